"""Step 7 of RULES.md: egocentric observation windows for every slot, in a few tensor operations.

The engine keeps every cell's features in `World.planes` ([cells, F], channels last). Each step
it rewrites the rows of the cells whose features may have changed: every agent's cell and every
converter's cell (cells that agents left were cleared by the move and swap kernels). A window
row of an observation, W cells x F features, is then one contiguous run of bytes of `planes`,
so all windows of all slots are gathered by a single `index_select` over an overlapping
strided view of `planes` (S x H rows of W*F bytes). The global features go to the centre cell.

Memory layout (ours): the observation buffers are `[slots, H, W, F]` in memory and exposed as
`[slots, F, H, W]` views, i.e. torch's channels_last format. Gathering channels-first windows
would cost a byte-by-byte gather, 3-4x slower on a CPU. Shapes and values are those of the
contract; a consumer that needs a contiguous channels-first tensor calls `.contiguous()`, and
flattening must use `.reshape()` / `.flatten()`, not `.view()`.
"""

from __future__ import annotations

import torch

from heartgrid.config.items import ITEMS
from heartgrid.engine.features import FeatureRegistry
from heartgrid.engine.state import CONVERTER_CHANNELS, World
from heartgrid.engine.tables import AGENT_CODE

GLOBALS = ("episode_completion_pct", "last_action", "last_action_arg", "last_reward")


class Observer:
    def __init__(self, world: World, features: FeatureRegistry, store: torch.Tensor):
        d, device = world.dims, world.device
        self.channel = {f.name: f.id for f in features}
        inv = [self.channel[f"inv:{item}"] for item in ITEMS]
        if inv != list(range(inv[0], inv[0] + len(ITEMS))):
            raise ValueError("the engine needs the inv:<item> features in item order, adjacent")
        self.inventory = slice(inv[0], inv[0] + len(ITEMS))
        converter = [self.channel[n] for n in ("converting", "swappable")] + inv
        if converter != list(range(converter[0], converter[0] + CONVERTER_CHANNELS)):
            raise ValueError("the engine needs the features converting, swappable, inv:<item> adjacent")
        self.first_converter_channel = converter[0]
        self.converter_channels = torch.arange(converter[0], converter[0] + CONVERTER_CHANNELS,
                                               device=device)

        self.num_envs, self.num_agents = d.num_envs, d.num_agents
        self.height, self.width, self.features = d.obs_height, d.obs_width, d.num_features
        cy, cx = d.obs_height // 2, d.obs_width // 2
        # Cell of a window's top-left corner relative to its centre, and the rows below it.
        self.corner = cy * d.padded_width + cx
        self.row_offsets = torch.arange(d.obs_height, device=device) * d.padded_width
        # Overlapping view: row p = the W*F bytes starting at cell p.
        self.window_rows = world.planes.view(-1).as_strided(
            (world.planes.shape[0] + 1 - d.obs_width, d.obs_width * d.num_features),
            (d.num_features, 1))
        self.store = store  # [S, H, W, F]
        self.store_rows = store.view(-1, d.obs_width * d.num_features)
        centre = store[:, cy, cx]  # [S, F] view
        self.centre = {name: centre[:, self.channel[name]] for name in GLOBALS}
        action = self.channel["last_action"]
        if self.channel["last_action_arg"] != action + 1:
            raise ValueError("the engine needs last_action_arg right after last_action")
        self.centre_action = centre[:, action: action + 2]

        c = self.channel
        self.agent_rows = torch.zeros(d.slots, d.num_features, dtype=torch.uint8, device=device)
        self.agent_rows[:, c["type_id"]] = AGENT_CODE
        self.agent_columns = {name: self.agent_rows[:, c[name]] for name in
                              ("agent:group", "agent:frozen", "agent:orientation", "agent:color")}
        self.agent_inventory = self.agent_rows[:, self.inventory]
        self.env_of_slot = torch.arange(d.slots, device=device) // d.num_agents
        self.bind(world)

    def bind(self, w: World) -> None:
        """(Re)build the converter rows for the world's converter capacity. A converter's row
        holds only the channels it can change (its type_id was painted with the map)."""
        self.planes_bytes = w.planes.view(-1)
        self.conv_rows = torch.zeros(w.dims.converters, CONVERTER_CHANNELS, dtype=torch.uint8,
                                     device=w.device)
        self.conv_converting = self.conv_rows[:, 0]
        self.conv_inventory = self.conv_rows[:, 2:]

    def refresh_static(self, w: World) -> None:
        """Features that change only when an episode begins (tasks may change them)."""
        self.agent_columns["agent:group"].copy_(w.param_group_id.index_select(0, self.env_of_slot))

    def refresh(self, w: World, converters: torch.Tensor | None = None) -> None:
        """Rewrite the feature rows of every agent's cell and of the converters' cells: those
        of `converters` (ids; converters.py says which may have changed), or all."""
        S, C = w.dims.slots, w.dims.converters
        cols = self.agent_columns
        cols["agent:frozen"].copy_(w.agent_frozen[:S].clamp(max=1))
        cols["agent:orientation"].copy_(w.agent_orientation)
        cols["agent:color"].copy_(w.agent_color)
        # Agent inventories never exceed their limits (at most 255), so they need no clipping.
        self.agent_inventory.copy_(w.agent_inventory[:S])
        w.planes.index_copy_(0, w.agent_cell, self.agent_rows)

        if converters is not None:
            rows = torch.zeros(len(converters), CONVERTER_CHANNELS, dtype=torch.uint8, device=w.device)
            rows[:, 0] = w.conv_timer.index_select(0, converters).clamp_(max=1)
            rows[:, 2:] = w.conv_inventory.index_select(0, converters).clamp_(max=255)
            index = w.conv_feature_index.index_select(0, converters)
            self.planes_bytes.scatter_(0, index.view(-1), rows.view(-1))
            return
        self.conv_converting.copy_(w.conv_timer.clamp(max=1))
        self.conv_inventory.copy_(w.conv_inventory[:C].clamp(max=255))
        # The 12 adjacent channels of each converter's cell (inactive ones: a trash cell),
        # written by index_put_ on `planes` itself: a write through a view of `planes` would
        # copy all of it in a compiled step.
        w.planes.index_put_((w.conv_cell.unsqueeze(1), self.converter_channels), self.conv_rows)

    def gather(self, w: World) -> None:
        """Every slot's window into the store: one memory-bound copy of S*H rows, the one
        operation of a step that a second CPU thread speeds up (~1.9x; BatchedEngine)."""
        starts = (w.agent_cell - self.corner).unsqueeze(1) + self.row_offsets  # [S, H]
        torch.index_select(self.window_rows, 0, starts.view(-1), out=self.store_rows)

    def observe_globals(self, w: World, rewards: torch.Tensor) -> None:
        """The global features at every window's centre (`rewards`: this step's)."""
        completion = torch.div(255 * w.env_step, w.env_length, rounding_mode="floor")
        self.centre["episode_completion_pct"].view(self.num_envs, self.num_agents).copy_(
            completion.unsqueeze(1))
        self.centre_action.copy_(w.agent_last_action)
        self.centre["last_reward"].copy_(torch.round(rewards * 100).clamp_(0, 255))

    def observe_new(self, w: World, slots: torch.Tensor) -> None:
        """Observations of `slots` whose episode just began. Their global features are all 0
        (t = 0, no last action, no reward), which is what the planes hold at the centre."""
        starts = (w.agent_cell.index_select(0, slots) - self.corner).unsqueeze(1) + self.row_offsets
        windows = self.window_rows.index_select(0, starts.view(-1))
        self.store.index_copy_(0, slots, windows.view(len(slots), self.height, self.width, -1))

"""Step 4 of RULES.md for the whole batch: the action kinds in their fixed order.

Every kind is a handful of tensor operations over all agent slots at once. Agents that do not
take part in a kind still flow through it, masked: their writes go to the trash rows of the
state (state.py), so no kind needs to know on the host who acts.

Conflicts ("several agents claim the same target: the highest priority wins") are resolved
among the claimants of one env: keys are unique within an env (priority * A + A - 1 - agent:
ties go to the lower agent index), and targets are global cell or converter indices, so envs
never interfere. Eagerly, one scatter-max: every claimant writes its key into a scratch
array indexed by its target and wins when the maximum stored there is its own. The compiled
step (compiled.py) compares every pair of an env's claimants instead ([N, A, A], fused into
one loop): a scatter-max into a grid-sized scratch array becomes a copy of the whole array
once torch.compile functionalises it. (Also measured: the scatter as a registered in-place
op, and bits 2^rank summed by an accumulating index_put_; both slower compiled,
benchmarks/README.md.) For the same reason the compiled step writes grid cells only by
`index_put_` on the whole `planes` tensor, never through a view.

Speed notes (CPU): row gathers use `index_select` (advanced indexing `x[idx]` costs several
times more per call), and masked arithmetic uses `addcmul_` with bool masks. With
`host_skips` (the default on a CPU, where reading a flag on the host costs nothing) a kind
returns early when no agent can take part, for example attacks when nobody holds a laser; on
a GPU such a read would stall the queue, so every kind runs masked. Results are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heartgrid.config.game import ACTION_ARGS
from heartgrid.config.items import ORIENTATION_DELTAS
from heartgrid.engine.converters import Converters
from heartgrid.engine.state import World, holds
from heartgrid.engine.stats import AgentStatLayout
from heartgrid.engine.tables import AGENT_CODE

MOVE_KINDS = ("move", "move_cardinal", "move_8way")
MAX_ARGS = max(ACTION_ARGS.values())
# move_8way args 4..7: up-left, up-right, down-left, down-right (diagonals keep orientation).
DIAGONALS = ((-1, -1), (-1, 1), (1, -1), (1, 1))
# The offset to an agent's left for each orientation (up, down, left, right); right = -left.
LEFT_OF = ((0, -1), (0, 1), (1, 0), (-1, 0))


def move_offset(type_: int | torch.Tensor, arg: int | torch.Tensor) -> int | torch.Tensor:
    """Row of (type, arg) in the move tables; + orientation gives the entry."""
    return (type_ * MAX_ARGS + arg) * 4


@dataclass
class Intent:
    """What every slot does this step (decoded, RULES.md steps 1-2)."""

    type: torch.Tensor  # int64 [S], enabled action type id (0 where invalid)
    arg: torch.Tensor  # int64 [S]
    move_offset: torch.Tensor  # int64 [S]: move_offset(type, arg)
    acting: torch.Tensor  # bool [S]: valid and not frozen
    doing: torch.Tensor  # bool [T, S]: acting, with action type t
    key: torch.Tensor  # int64 [S]: priority key, unique within the env
    success: torch.Tensor  # bool [S]: filled by the kinds


class ActionKinds:
    """Static tables of the action kinds and the kernels that apply them."""

    def __init__(self, world: World, type_names: tuple[str, ...], type_channel: int,
                 swappable_channel: int, stat_layout: AgentStatLayout, host_skips: bool,
                 converters: Converters, compiled: bool = False):
        """compiled: the kinds run inside the compiled step (compiled.py; the masked path),
        which resolves conflicts pairwise and needs no scratch arrays."""
        d, device = world.dims, world.device
        self.host_skips, self.compiled = host_skips, compiled
        self.converters = converters  # told which converters agents used (host skips)
        self.type_of = {name: t for t, name in enumerate(type_names)}
        self.stat_layout = stat_layout
        wp = d.padded_width

        def flat(dr: int, dc: int) -> int:
            return dr * wp + dc

        self.forward = torch.tensor([flat(*o) for o in ORIENTATION_DELTAS], device=device)
        # Attack scan: distance 1..3 ahead, each with lateral offset 0, left, right.
        scan = [[flat(dist * fr + lat * lr, dist * fc + lat * lc)
                 for dist in (1, 2, 3) for lat in (0, 1, -1)]
                for (fr, fc), (lr, lc) in zip(ORIENTATION_DELTAS, LEFT_OF)]
        self.scan = torch.tensor(scan, device=device)  # [4, 9]

        # Moves: (type, arg, orientation) -> (cell delta, orientation afterwards).
        delta = torch.zeros(len(type_names), MAX_ARGS, 4, dtype=torch.int64)
        turn = torch.arange(4).repeat(len(type_names), MAX_ARGS, 1)
        is_move = torch.zeros(len(type_names), dtype=torch.bool)
        for name in MOVE_KINDS:
            if name not in self.type_of:
                continue
            t = self.type_of[name]
            is_move[t] = True
            for arg in range(ACTION_ARGS[name]):
                for o, (fr, fc) in enumerate(ORIENTATION_DELTAS):
                    if name == "move":
                        delta[t, arg, o] = flat(fr, fc) if arg == 0 else -flat(fr, fc)
                    elif arg < 4:
                        delta[t, arg, o] = flat(*ORIENTATION_DELTAS[arg])
                        turn[t, arg, o] = arg
                    else:
                        delta[t, arg, o] = flat(*DIAGONALS[arg - 4])
        self.move_delta = delta.view(-1).to(device)
        self.move_turn = turn.view(-1).to(device)
        self.move_types = [t for t in range(len(type_names)) if is_move[t]]
        self.has_moves = bool(self.move_types)

        self.slots, self.num_agents = d.slots, d.num_agents
        self.slot_ids = torch.arange(d.slots, device=device)
        self.env_of_slot = self.slot_ids // d.num_agents
        # Per-slot trash entries (state.py): cell M + s, and scratch entry M + s of `claims`.
        self.trash_cells = d.cells + self.slot_ids
        self.claims = (self.scratch(d.cells + d.slots, device), self.trash_cells)
        # Attack targets: the agents found at the 9 scan positions as one 9-bit number, and per
        # number how many were found and at which position the k-th is (k = 0: position 0).
        # Two table lookups instead of a running count over the scan ([S, 9, 9] masks, which
        # a compiled step recomputed per entry, gathers included).
        positions = [[j for j in range(9) if found >> j & 1] for found in range(512)]
        self.scan_bit = 2 ** torch.arange(9, device=device)
        self.scan_count = torch.tensor([len(p) for p in positions], device=device)
        self.scan_kth = torch.tensor([[0, *p] + [0] * (9 - len(p)) for p in positions],
                                     device=device).view(-1)  # [512 * 10]: k-th found of each
        self.attacker_of = torch.full((2 * d.slots,), d.slots, dtype=torch.int64, device=device)
        self.room = torch.zeros(d.slots + 1, 10, dtype=torch.int16, device=device)
        self.taken = torch.zeros(d.slots + 1, 10, dtype=torch.int16, device=device)
        # Grid channels are addressed by number: views of `planes` made outside a compiled
        # step would alias its largest input (see the module docstring).
        self.type_channel, self.swappable_channel = type_channel, swappable_channel  # type: occupancy
        self.channel_index = {c: torch.tensor(c, device=device) for c in (type_channel, swappable_channel)}
        self.byte = {v: torch.tensor(v, dtype=torch.uint8, device=device) for v in (0, AGENT_CODE)}
        self.bind(world)

    def bind(self, w: World) -> None:
        """Cache views of the world's tensors (again after the converter capacity grew)."""
        S, C = w.dims.slots, w.dims.converters
        self.inventory = w.agent_inventory[:S]
        self.trash_converters = C + self.slot_ids
        # Converter contests: put_items for converter c is target c, get_items target C + c.
        self.converter_claims = (self.scratch(2 * C + S, w.device), 2 * C + self.slot_ids)

        layout = self.stat_layout
        self.stolen, self.put_stat, self.get_stat = (
            w.agent_item_stats[layout.kind(kind)] for kind in ("stolen", "put", "get"))
        self.blocked_stat = w.agent_counts[:, layout.column["action.attack.blocked"]]

    # ----------------------------------------------------------------------------------------

    def scratch(self, size: int, device: torch.device) -> torch.Tensor:
        """A claims array of -1 for `resolve`'s scatter-max (none for the compiled step)."""
        return torch.full((0 if self.compiled else size,), -1, dtype=torch.int64, device=device)

    def resolve(self, claim: torch.Tensor, target: torch.Tensor, key: torch.Tensor,
                claims: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Winners among claimants: the highest key per target. `claims`: a scratch array of
        -1 with one entry per possible target and one trash entry per slot, and the slots'
        trash indices (default: the cells)."""
        if self.compiled:
            # Beaten: another claimant of the same env with the same target and a higher key.
            A = self.num_agents
            target = torch.where(claim, target, -1).view(-1, 1, A)
            rival = (target == target.transpose(1, 2)) & claim.view(-1, 1, A)
            beaten = (rival & (key.view(-1, 1, A) > key.view(-1, A, 1))).any(dim=2)
            return claim & ~beaten.view(-1)
        claims, trash = self.claims if claims is None else claims
        target = torch.where(claim, target, trash)
        claims.scatter_reduce_(0, target, key, reduce="amax")
        won = claim & (claims.gather(0, target) == key)
        claims.index_fill_(0, target, -1)
        return won

    def cells(self, w: World, channel: int, cells: torch.Tensor) -> torch.Tensor:
        """Feature `channel` of the grid cells `cells`."""
        return w.planes.select(1, channel).index_select(0, cells)

    def fill_cells(self, w: World, cells: torch.Tensor, channel: int, value: int) -> None:
        """Feature `channel` of the grid cells `cells` := value."""
        if self.compiled:  # no write through a view of `planes` (module docstring)
            w.planes.index_put_((cells, self.channel_index[channel]), self.byte[value])
        else:
            w.planes.select(1, channel).index_fill_(0, cells, value)

    def nobody(self, mask: torch.Tensor) -> bool:
        """True when the host may skip work because no slot is set (only with host_skips)."""
        return self.host_skips and not bool(mask.any())

    def winners(self, won: torch.Tensor) -> torch.Tensor | None:
        """The slots whose rows an effect must touch. With host_skips, only the winners (a few
        of S; the row operations then cost a few rows instead of S). None: every slot, with
        the losers' writes sent to their trash rows, as a GPU does without looking."""
        return won.nonzero().squeeze(1) if self.host_skips else None

    @staticmethod
    def rows(tensor: torch.Tensor, slots: torch.Tensor | None) -> torch.Tensor:
        return tensor if slots is None else tensor.index_select(0, slots)

    @staticmethod
    def write_rows(tensor: torch.Tensor, slots: torch.Tensor | None, values: torch.Tensor) -> None:
        if slots is None:
            tensor.copy_(values)
        else:
            tensor.index_copy_(0, slots, values)

    @staticmethod
    def add_rows(tensor: torch.Tensor, slots: torch.Tensor | None, values: torch.Tensor) -> None:
        if slots is None:
            tensor.add_(values)
        else:
            tensor.index_add_(0, slots, values.to(tensor.dtype))

    @staticmethod
    def or_rows(tensor: torch.Tensor, slots: torch.Tensor | None, values: torch.Tensor) -> None:
        if slots is None:
            tensor |= values
        else:
            tensor.index_copy_(0, slots, tensor.index_select(0, slots) | values)

    def moving(self, w: World, won: torch.Tensor, target: torch.Tensor
               ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """(slots, old cells, new cells) of the agents that move to `target`: the winners', or
        every slot's with the losers' cells replaced by their trash cells (see `winners`)."""
        slots = self.winners(won)
        if slots is None:
            return None, torch.where(won, w.agent_cell, self.trash_cells), torch.where(won, target, self.trash_cells)
        return slots, w.agent_cell.index_select(0, slots), target.index_select(0, slots)

    def apply(self, w: World, intent: Intent, need: torch.Tensor | None) -> None:
        """Every enabled kind in RULES.md order. `need` [S, 10]: the resources each slot's
        action requires (max of required and consumed); None when no action but attack
        requires anything in any env (attack's needs are per slot in `slot_attack_need`)."""
        if "attack" in self.type_of:
            attack_need = w.slot_attack_need if need is None else need
            attacking = intent.doing[self.type_of["attack"]] & holds(self.inventory, attack_need)
            self.attack(w, intent, attacking)
        # Only attacks change another agent's inventory, so later kinds can share one check.
        affordable = intent.acting if need is None else intent.acting & holds(self.inventory, need)
        able = intent.doing & affordable  # [T, S]: acting with type t, holding what it needs
        row = {name: able[t] for name, t in self.type_of.items()}
        if "swap" in row:
            self.swap(w, intent, row["swap"])
        if self.has_moves:
            self.move(w, intent, affordable)
        if "rotate" in row:
            torch.where(row["rotate"], intent.arg, w.agent_orientation, out=w.agent_orientation)
            intent.success |= row["rotate"]
        if "put_items" in row or "get_items" in row:
            self.use_converters(w, intent, row.get("put_items"), row.get("get_items"))
        if "change_color" in row:
            step = 1 - 2 * intent.arg  # arg 0: +1, arg 1: -1; uint8 arithmetic wraps mod 256
            w.agent_color.add_((step * row["change_color"]).to(torch.uint8))
            intent.success |= row["change_color"]
        if "noop" in row:
            intent.success |= row["noop"]

    # ----------------------------------------------------------------------------------------

    def attack(self, w: World, intent: Intent, attacking: torch.Tensor) -> None:
        S, inventory = self.slots, self.inventory
        if self.nobody(attacking):
            return

        # The k-th agent found in scan order, else the last one found.
        cells = w.agent_cell.unsqueeze(1) + self.scan.index_select(0, w.agent_orientation)
        occupant = w.agent_at.index_select(0, cells.view(-1)).view(S, -1)  # [S, 9]
        found = occupant >= 0
        bits = (found * self.scan_bit).sum(dim=1)
        total = self.scan_count.index_select(0, bits)
        want = torch.minimum(intent.arg + 1, total)  # 0 where none was found
        position = self.scan_kth.index_select(0, bits * 10 + want)
        target = occupant.gather(1, position.unsqueeze(1)).squeeze(1).clamp_(min=0)
        won = self.resolve(attacking & (total > 0), target, intent.key)
        intent.success |= won
        if self.nobody(won):
            return

        # Every winner pays first. Targets are distinct, so the rest is computed per target,
        # densely: `mine` is the slot of the agent that won the attack on each slot (S: none).
        inventory.addcmul_(w.slot_attack_cost, won.unsqueeze(1), value=-1)
        self.attacker_of[:S] = S
        self.attacker_of.index_copy_(0, torch.where(won, target, S + self.slot_ids), self.slot_ids)
        mine = self.attacker_of[:S]
        attacked = mine < S
        # Defenders pay; then steals see the inventories after every payment.
        defended = attacked & w.slot_has_defense & holds(inventory, w.slot_defense)
        inventory.addcmul_(w.slot_defense, defended.unsqueeze(1), value=-1)
        self.blocked_stat.add_(won & defended.index_select(0, target))
        hit = attacked & ~defended
        steals = hit & (w.agent_frozen == 0)  # a target frozen before this kind keeps its items
        torch.where(hit, w.slot_freeze, w.agent_frozen, out=w.agent_frozen)
        torch.sub(w.slot_item_max, inventory, out=self.room[:S])  # the attacker's room
        taken = self.taken[:S]
        torch.minimum(inventory, self.room.index_select(0, mine), out=taken)
        taken.mul_(steals.unsqueeze(1))
        gained = self.taken.index_select(0, torch.where(won, target, S))
        inventory.sub_(taken)
        inventory.add_(gained)
        self.stolen.add_(gained)

    def swap(self, w: World, intent: Intent, swapping: torch.Tensor) -> None:
        faced = w.agent_cell + self.forward.index_select(0, w.agent_orientation)
        swappable = self.cells(w, self.swappable_channel, faced) == 1
        claim = swapping & swappable
        if self.nobody(claim):
            return
        won = self.resolve(claim, faced, intent.key)
        intent.success |= won
        slots, old, new = self.moving(w, won, faced)
        # The block takes the agent's cell; the agent's own row is rewritten after the step.
        w.planes.index_copy_(0, old, w.planes.index_select(0, new))
        self.fill_cells(w, new, self.type_channel, AGENT_CODE)
        self.fill_cells(w, new, self.swappable_channel, 0)
        self.relocate(w, won, slots, old, new)

    def move(self, w: World, intent: Intent, affordable: torch.Tensor) -> None:
        moving = intent.doing[self.move_types[0]]
        for t in self.move_types[1:]:
            moving = moving | intent.doing[t]
        index = intent.move_offset + w.agent_orientation
        # move_cardinal (and move_8way args 0-3) face the way they go, even when blocked.
        torch.where(moving, self.move_turn.index_select(0, index), w.agent_orientation,
                    out=w.agent_orientation)
        target = w.agent_cell + self.move_delta.index_select(0, index)
        # Emptiness is read before anyone moves: a cell vacated this step stays closed.
        empty = self.cells(w, self.type_channel, target) == 0
        won = self.resolve(moving & affordable & empty, target, intent.key)
        intent.success |= won
        slots, old, new = self.moving(w, won, target)
        w.planes.index_fill_(0, old, 0)
        self.fill_cells(w, new, self.type_channel, AGENT_CODE)
        self.relocate(w, won, slots, old, new)

    def relocate(self, w: World, won: torch.Tensor, slots: torch.Tensor | None, old: torch.Tensor,
                 new: torch.Tensor) -> None:
        w.agent_at.index_fill_(0, old, -1)
        if slots is None:
            w.agent_at.index_copy_(0, new, self.slot_ids)  # trash entries are never read
            torch.where(won, new, w.agent_cell, out=w.agent_cell)
        else:
            w.agent_at.index_copy_(0, new, slots)
            w.agent_cell.index_copy_(0, slots, new)

    def use_converters(self, w: World, intent: Intent, putting: torch.Tensor | None,
                       getting: torch.Tensor | None) -> None:
        """put_items, then get_items, on the converter each agent faces. The two kinds have
        separate contests (a putter and a getter may both win one converter) but are resolved
        in one scatter; their effects apply in order, so a get sees what was put."""
        C = w.dims.converters
        faced = w.agent_cell + self.forward.index_select(0, w.agent_orientation)
        converter = w.conv_at.index_select(0, faced)
        facing = converter >= 0
        putting = putting & facing if putting is not None else None
        getting = getting & facing if getting is not None else None
        if putting is None or getting is None:
            claim = putting if getting is None else getting
        else:
            claim = putting | getting
        if self.nobody(claim):
            return
        target = converter + C * (getting if getting is not None else False)
        won = self.resolve(claim, target, intent.key, self.converter_claims)
        if putting is not None:
            self.put(w, intent, *self.using(won & putting, converter))
        if getting is not None:
            self.get(w, intent, *self.using(won & getting, converter))

    def using(self, won: torch.Tensor, converter: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(slots, the converter each uses): the winners', or every slot's with the losers on
        their trash converters (see `winners`)."""
        slots = self.winners(won)
        if slots is None:
            return None, torch.where(won, converter, self.trash_converters)
        used = converter.index_select(0, slots)
        self.converters.used(used)
        return slots, used

    def put(self, w: World, intent: Intent, slots: torch.Tensor | None, conv: torch.Tensor) -> None:
        """Of each input item, what the recipe still needs, up to what the agent holds."""
        held = w.conv_inventory.index_select(0, conv)
        missing = (w.conv_input.index_select(0, conv) - held).clamp_(min=0)
        inventory = self.rows(self.inventory, slots)
        moved = torch.minimum(missing, inventory)  # 0 for the trash converters
        self.write_rows(self.inventory, slots, inventory - moved)
        # Winners hold distinct converters, so whole rows can be written back (trash rows
        # receive their own zeros); faster than index_add_ on a CPU and on a GPU.
        w.conv_inventory.index_copy_(0, conv, held + moved)
        self.add_rows(self.put_stat, slots, moved)
        self.or_rows(intent.success, slots, moved.amax(dim=1) > 0)

    def get(self, w: World, intent: Intent, slots: torch.Tensor | None, conv: torch.Tensor) -> None:
        """All output items of the converter, up to the agent's limits."""
        held = w.conv_inventory.index_select(0, conv)
        outputs = held * w.conv_output_mask.index_select(0, conv)
        inventory = self.rows(self.inventory, slots)
        room = (self.rows(w.slot_item_max, slots) - inventory).clamp_(min=0)
        moved = torch.minimum(outputs, room)
        self.write_rows(self.inventory, slots, inventory + moved)
        w.conv_inventory.index_copy_(0, conv, held - moved)
        self.add_rows(self.get_stat, slots, moved)
        self.or_rows(intent.success, slots, moved.amax(dim=1) > 0)

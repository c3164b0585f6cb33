"""Batched map generation for the tensor engine: `maps.build_layout` for many envs at once.

The batched engine stores each env's grid padded by `pad` wall cells on every side (so that
observation windows and attack scans never leave the tensor) and flattened: the cell (row, col)
of the unpadded grid is `(row + pad_r) * Wp + (col + pad_c)` within its env. A room cell is
found from its rank exactly as in maps.py: hash scores per (env, episode, instance, cell),
sorted by (score, cell index) for random rooms; identity order for ASCII rooms. Everything is
torch on the engine's device, vectorised over the envs being reset; no Python loop per env.
"""

from __future__ import annotations

import torch

from heartgrid.config.game import GameConfig
from heartgrid.engine.maps import WALL, object_config, room_origins, room_shape
from heartgrid.engine.rng import STREAM_MAP, hash32



class MapGenerator:
    """Static geometry of one engine's maps and the batched placement of rooms."""

    def __init__(self, game: GameConfig, pad: tuple[int, int], num_features: int,
                 type_channel: int, swappable_channel: int, device: torch.device):
        self.height, self.width = game.map.grid_shape
        self.pad_r, self.pad_c = pad
        self.padded_height = self.height + 2 * self.pad_r
        self.padded_width = self.width + 2 * self.pad_c
        self.room_height, self.room_width = room_shape(game.map)
        self.instances = game.map.instances
        self.type_channel, self.swappable_channel = type_channel, swappable_channel

        # room_cells[i, c]: padded flat cell of room cell c (row-major in the room) of instance i.
        cells = torch.arange(self.room_height * self.room_width, device=device)
        origins = torch.tensor(room_origins(game.map), device=device, dtype=torch.int64)
        rows = origins[:, :1] + self.pad_r + cells // self.room_width
        cols = origins[:, 1:] + self.pad_c + cells % self.room_width
        self.room_cells = rows * self.padded_width + cols  # [I, R]
        self.cell_index = cells

        # The empty map: every cell a wall (borders, gaps between rooms, padding) except rooms.
        wall = object_config(game, WALL)
        template = torch.zeros(self.padded_height * self.padded_width, num_features,
                               dtype=torch.uint8, device=device)
        padded = torch.zeros(self.padded_height, self.padded_width, dtype=torch.bool, device=device)
        padded[: self.pad_r] = True
        padded[self.pad_r + self.height:] = True
        padded[:, : self.pad_c] = True
        padded[:, self.pad_c + self.width:] = True
        padded = padded.view(-1)
        # Cells outside the grid read as the game's walls (RULES.md "Observations"), never
        # swappable: nothing can enter them.
        template[:, type_channel] = wall.type_id + 1
        swappable = bool(getattr(wall, "swappable", False))
        template[:, swappable_channel] = (~padded & swappable).to(torch.uint8)
        template[self.room_cells.view(-1)] = 0
        self.template = template  # [Hp * Wp, F]

    @property
    def cells_per_env(self) -> int:
        return self.padded_height * self.padded_width

    def rank_cells(self, seeds: torch.Tensor, episodes: torch.Tensor,
                   shuffled: torch.Tensor) -> torch.Tensor:
        """[k, I, R] padded flat cell (within its env) of rank r of instance i, for k envs.

        seeds, episodes: int64 [k]; shuffled: bool [k] (False: ASCII room, reading order).
        """
        instance = torch.arange(self.instances, device=seeds.device).view(1, -1, 1)
        cell = self.cell_index.view(1, 1, -1)
        scores = hash32(seeds.view(-1, 1, 1), episodes.view(-1, 1, 1), STREAM_MAP, instance, cell)
        # Sort by (score, cell index): scores < 2^32 and R < 2^31, so the key is unique in int64.
        keys = scores * shuffled.view(-1, 1, 1) * cell.numel() + cell
        order = torch.argsort(keys, dim=-1)  # [k, I, R]: room cell index by rank
        return _take_rows(self.room_cells, order)

    def paint(self, planes_env: torch.Tensor, env_ids: torch.Tensor, rank_cells: torch.Tensor,
              rank_code: torch.Tensor, rank_swappable: torch.Tensor) -> None:
        """Lay out the maps of envs `env_ids` in `planes_env` ([N, Hp*Wp, F], in place).

        rank_code / rank_swappable: uint8 [k, R], what each rank holds (same for every instance).
        """
        k = len(env_ids)
        planes_env.index_copy_(0, env_ids, self.template.expand(k, -1, -1).contiguous())
        flat = planes_env.view(-1, planes_env.shape[-1])
        rows = (env_ids.view(-1, 1, 1) * self.cells_per_env + rank_cells).view(-1)
        codes = rank_code.unsqueeze(1).expand(-1, self.instances, -1).reshape(-1)
        swaps = rank_swappable.unsqueeze(1).expand(-1, self.instances, -1).reshape(-1)
        flat[rows, self.type_channel] = codes
        flat[rows, self.swappable_channel] = swaps


def _take_rows(room_cells: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """room_cells[i, order[k, i, r]] for every k, i, r."""
    return room_cells.unsqueeze(0).expand(order.shape[0], -1, -1).gather(2, order)

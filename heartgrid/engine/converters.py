"""Step 3 of RULES.md: every converter of every env advances, in one batch.

RULES.md describes a converter by a phase (idle, converting, cooling) and a timer. The batched
engine folds both into one countdown, `conv_timer`, which a conversion sets to
conversion_ticks + cooldown when it starts:

    timer > cooldown      converting (the outputs appear when the timer reaches `cooldown`)
    0 < timer <= cooldown cooling
    timer == 0            idle

which is the same schedule: converting: timer -= 1, at 0 the outputs appear and cooling
starts (idle at once when cooldown = 0); cooling: timer -= 1, at 0 idle. An idle converter
then starts a conversion (inputs consumed) if it holds its whole input recipe, has
conversions left and holds fewer output items than max_output; with inputs and conversions
left but no room it counts one `blocked` step. Unlimited max_output / max_conversions (-1 in
the config) are stored as the largest int32, so each test is one comparison.

With host skips (a CPU), only the converters that change are touched. Whether an idle converter
would start or be blocked is kept per converter and recomputed only for those whose inventory or
conversion count changed (outputs appeared, a conversion started, an agent put or took items);
`changed()` gives the observer the converters whose features may differ from what the
grid shows. Most of 5,120 converters (64 arena envs) are idle or full on a given step, and the
[C, 10] reductions over every one of them were an eighth of a CPU step. Results are the same
either way (the equivalence tests run both ways).
"""

from __future__ import annotations

import torch

from heartgrid.engine.state import World, holds


class Converters:
    """Step 3 for every converter of every env; with `host_skips`, tracks which changed."""

    def __init__(self, host_skips: bool, device: torch.device):
        self.host_skips = host_skips
        self.no_ids = torch.empty(0, dtype=torch.int64, device=device)
        self.stale = True
        """The per-converter caches must be recomputed from the world (after episodes began,
        the capacity grew or a state was loaded)."""
        self.would_start = torch.empty(0, dtype=torch.bool)
        self.would_block = torch.empty(0, dtype=torch.bool)
        self.inventory_changed: list[torch.Tensor] = []
        """Converters whose inventory changed since the caches were last brought up to date."""
        self.shown: list[torch.Tensor] | None = None
        """Converters whose features changed since the observer last wrote them; None: all."""

    def invalidate(self) -> None:
        """Everything must be recomputed and shown again (converter ids may have changed)."""
        self.stale, self.inventory_changed, self.shown = True, [], None

    def began(self, converters: torch.Tensor) -> None:
        """Episodes began in the envs of `converters` (all their ids): new inventories, counts,
        cells and perhaps recipes. Only their caches and features are redone; the other envs'
        converters carry on. Marked even while the caches are stale: after the first full
        redraw the grid shows only what `changed` lists, and a second reset may come before
        any step."""
        if self.host_skips:
            self.used(converters)

    def used(self, converters: torch.Tensor) -> None:
        """Agents put or took items at `converters` (ids of real converters, < C)."""
        self.inventory_changed.append(converters)
        if self.shown is not None:
            self.shown.append(converters)

    def changed(self) -> torch.Tensor | None:
        """Converter ids whose features may have changed since the last call (repetitions
        possible); None: all of them (always without host skips)."""
        if not self.host_skips:
            return None  # and no state to touch: the compiled step calls this (batched.py)
        shown, self.shown = self.shown, []
        if shown is None:
            return None
        return torch.cat(shown) if len(shown) > 1 else shown[0] if shown else self.no_ids

    def advance(self, w: World) -> None:
        if not self.host_skips:
            advance_all(w)
            return
        C = w.dims.converters
        timer, inventory = w.conv_timer, w.conv_inventory[:C]
        finished = (timer == w.conv_finish_at).nonzero().squeeze(1)  # outputs appear now
        ending = (timer == 1).nonzero().squeeze(1)  # idle or cooling from the next step on
        if len(finished):
            inventory.index_add_(0, finished, w.conv_output.index_select(0, finished))
            w.conv_conversions.index_add_(0, finished, torch.ones_like(finished, dtype=torch.int32))
        timer.sub_(1).clamp_(min=0)
        self.update_caches(w, finished)

        idle = timer == 0
        w.conv_blocked.add_(idle & self.would_block)
        started = (idle & self.would_start).nonzero().squeeze(1)
        if len(started):
            inventory.index_add_(0, started, -w.conv_input.index_select(0, started))
            timer.index_copy_(0, started, w.conv_busy_time.index_select(0, started))
            self.inventory_changed.append(started)
        if self.shown is not None:
            self.shown += [finished, ending, started]

    def update_caches(self, w: World, finished: torch.Tensor) -> None:
        C = w.dims.converters
        if self.stale:
            self.would_start, self.would_block = readiness(w, slice(0, C))
            self.stale, self.inventory_changed = False, []
            return
        ids = torch.cat([finished, *self.inventory_changed])
        self.inventory_changed = []
        if len(ids):
            start, block = readiness(w, ids)
            self.would_start.index_copy_(0, ids, start)
            self.would_block.index_copy_(0, ids, block)


def readiness(w: World, ids: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether the converters `ids`, if idle, would start a conversion, or count a blocked step
    (inputs and conversions left, but max_output items held already)."""
    def rows(tensor: torch.Tensor) -> torch.Tensor:
        return tensor[ids] if isinstance(ids, slice) else tensor.index_select(0, ids)

    inventory = rows(w.conv_inventory)
    ready = holds(inventory, rows(w.conv_input)) & (rows(w.conv_conversions) < rows(w.conv_max_conversions))
    room = outputs_held(inventory, rows(w.conv_output_mask)) < rows(w.conv_max_output)
    return ready & room, ready & ~room


def outputs_held(inventory: torch.Tensor, output_mask: torch.Tensor) -> torch.Tensor:
    return (inventory * output_mask).sum(dim=1, dtype=torch.int32)


def advance_all(w: World) -> None:
    """Step 3 with every converter in every operation (no host reads: a GPU's path)."""
    C = w.dims.converters
    timer, inventory = w.conv_timer, w.conv_inventory[:C]

    finished = timer == w.conv_finish_at  # finish_at = cooldown + 1: outputs appear now
    inventory.addcmul_(w.conv_output[:C], finished.unsqueeze(1))
    w.conv_conversions.add_(finished)
    timer.sub_(1).clamp_(min=0)

    would_start, would_block = readiness(w, slice(0, C))
    idle = timer == 0
    start = idle & would_start
    w.conv_blocked.add_(idle & would_block)
    inventory.addcmul_(w.conv_input[:C], start.unsqueeze(1), value=-1)
    timer.addcmul_(w.conv_busy_time, start)  # conversion_ticks + cooldown

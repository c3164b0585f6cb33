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
"""

from __future__ import annotations

import torch

from heartgrid.engine.state import World, holds


def advance_converters(w: World) -> None:
    C = w.dims.converters
    timer, inventory = w.conv_timer, w.conv_inventory[:C]

    finished = timer == w.conv_finish_at  # finish_at = cooldown + 1: outputs appear now
    inventory.addcmul_(w.conv_output[:C], finished.unsqueeze(1))
    w.conv_conversions.add_(finished)
    timer.sub_(1).clamp_(min=0)

    has_inputs = holds(inventory, w.conv_input[:C])
    ready = (timer == 0) & has_inputs & (w.conv_conversions < w.conv_max_conversions)
    outputs_held = (inventory * w.conv_output_mask[:C]).sum(dim=1, dtype=torch.int32)
    room = outputs_held < w.conv_max_output
    start = ready & room
    w.conv_blocked.add_(ready & ~room)
    inventory.addcmul_(w.conv_input[:C], start.unsqueeze(1), value=-1)
    timer.addcmul_(w.conv_busy_time, start)  # conversion_ticks + cooldown

"""Fixed game vocabulary: items, object type ids, orientations.

The order of ITEMS is part of the observation contract (the `inv:<item>` features follow it)
and of the checkpoint contract, so it never changes; new items go at the end.
"""

ITEMS: tuple[str, ...] = (
    "ore_red",
    "ore_blue",
    "ore_green",
    "battery_red",
    "battery_blue",
    "battery_green",
    "heart",
    "armor",
    "laser",
    "blueprint",
)
ITEM_INDEX: dict[str, int] = {name: i for i, name in enumerate(ITEMS)}

# Object type ids (SPEC §1.1). "empty" has no type id: it is the absence of an object.
TYPE_IDS: dict[str, int] = {
    "agent": 0,
    "wall": 1,
    "mine_red": 2,
    "mine_blue": 3,
    "mine_green": 4,
    "generator_red": 5,
    "generator_blue": 6,
    "generator_green": 7,
    "altar": 8,
    "armory": 9,
    "lasery": 10,
    "lab": 11,
    "factory": 12,
    "temple": 13,
    "block": 14,
}

# Orientation codes and the (drow, dcol) each one faces.
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
ORIENTATION_DELTAS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))

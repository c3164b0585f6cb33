"""The base class every HeartGrid config model derives from.

Two rules from the dehydration investigation are enforced here for every model:
- unknown keys are refused (`extra="forbid"`), so a typo can never be silently ignored;
- a config is plain data: `model_dump(mode="json")` writes every field, inherited defaults
  included, and loading that JSON back gives an equal config. Nothing depends on whether a
  value was "set" explicitly.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Config(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        validate_default=True,
        frozen=False,
        use_attribute_docstrings=True,
        # `run=123` on the command line is parsed as a number; a string field takes it as text.
        coerce_numbers_to_str=True,
        # NaN/inf would be written as non-standard JSON and never mean a real setting.
        allow_inf_nan=False,
    )

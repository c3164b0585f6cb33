from heartgrid.config.curriculum import CurriculumConfig
from heartgrid.config.game import GameConfig
from heartgrid.config.overrides import OverrideError, apply_overrides
from heartgrid.config.run import PolicyConfig, RunConfig, SystemConfig
from heartgrid.config.trainer import TrainerConfig

__all__ = [
    "CurriculumConfig",
    "GameConfig",
    "OverrideError",
    "PolicyConfig",
    "RunConfig",
    "SystemConfig",
    "TrainerConfig",
    "apply_overrides",
]

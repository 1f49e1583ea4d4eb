"""Typed configuration: ``load_config(path, overrides)`` -> ``ExperimentConfig``."""

from videotl.config.choices import register_choices, registered_choices
from videotl.config.loader import (
    ConfigError,
    config_keys,
    load_config,
    parse_override,
    save_config,
    to_yaml,
)
from videotl.config.schema import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    SolverConfig,
    TestConfig,
    TrainConfig,
)

__all__ = [
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "ModelConfig",
    "SolverConfig",
    "TestConfig",
    "TrainConfig",
    "config_keys",
    "load_config",
    "parse_override",
    "register_choices",
    "registered_choices",
    "save_config",
    "to_yaml",
]

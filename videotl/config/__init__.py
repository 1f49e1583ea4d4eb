"""Typed configuration: ``load_config(path, overrides)`` -> ``ExperimentConfig``."""

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
    TestConfig,
    TrainConfig,
)

__all__ = [
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "ModelConfig",
    "TestConfig",
    "TrainConfig",
    "config_keys",
    "load_config",
    "parse_override",
    "save_config",
    "to_yaml",
]

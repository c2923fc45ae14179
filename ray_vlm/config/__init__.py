"""Typed configuration: dataclasses with defaults, YAML files, ``key=value`` overrides."""

from ray_vlm.config.errors import UserError
from ray_vlm.config.loader import (
    CONFIG_FILE,
    ConfigError,
    config_to_yaml,
    load_config,
    save_config,
)
from ray_vlm.config.schema import CheckpointConfig, DataConfig, FinetuneConfig

__all__ = [
    "CONFIG_FILE",
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "FinetuneConfig",
    "UserError",
    "config_to_yaml",
    "load_config",
    "save_config",
]

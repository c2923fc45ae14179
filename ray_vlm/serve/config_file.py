"""Check a Serve config file (``configs/serve/*.yaml``) without deploying it."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError
from ray.serve.schema import ServeDeploySchema

from ray_vlm.config.loader import ConfigError
from ray_vlm.config.serve_schema import ServeConfig
from ray_vlm.serve.app import config_from_args

IMPORT_PATH = "ray_vlm.serve.app:build_app"


def check_serve_config(path: str | Path) -> dict[str, ServeConfig]:
    """Validate ``path`` with Ray's own ``ServeDeploySchema`` (what ``serve run``/``serve deploy``
    accept), then every ray_vlm application's ``args`` against ``ServeConfig``.

    Returns ``{application name: ServeConfig}``; raises ``ConfigError`` naming the file, the
    application and the key.
    """
    data = yaml.safe_load(Path(path).read_text())
    try:
        schema = ServeDeploySchema.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{path}: not a valid Ray Serve config file: {err}") from None
    configs = {}
    for app in schema.applications:
        if app.import_path != IMPORT_PATH:
            raise ConfigError(
                f"{path}: application '{app.name}': import_path must be '{IMPORT_PATH}'"
            )
        configs[app.name] = config_from_args(app.args, f"{path}: application '{app.name}' args")
    return configs

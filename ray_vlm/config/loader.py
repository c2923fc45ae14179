"""Load a typed config: dataclass defaults <- YAML file <- ``key=value`` overrides (PLM style).

``load_config(FinetuneConfig, ["config=configs/finetune/demo.yaml", "steps=10", "data.datamix=a:1"])``
returns a ``FinetuneConfig`` instance. Unknown keys and values of the wrong type raise
``ConfigError`` naming the key and where it came from; nothing is silently ignored.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ray_vlm.config.errors import UserError
from ray_vlm.config.secrets import mask_value

T = TypeVar("T")

CONFIG_FILE_KEY = "config"
CONFIG_FILE = "config.yaml"
"""The name of a resolved config beside what it made (a run, a checkpoint, an evaluation)."""


class ConfigError(UserError):
    """A config value or key a user must fix; the message names the key and its origin."""


def _describe(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None)
    msg = str(err).splitlines()[0]
    return f"key '{key}': {msg}" if key else msg


def _merge(base: DictConfig, layer: Any, origin: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, layer)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        raise ConfigError(f"{origin}: {_describe(err)}") from None


def split_overrides(args: list[str]) -> tuple[str | None, list[str]]:
    """Separate ``config=path.yaml`` from the ``a.b=value`` overrides; reject malformed items."""
    path, overrides = None, []
    for arg in args:
        if "=" not in arg or arg.startswith("="):
            raise ConfigError(f"override '{arg}' is not of the form key=value (e.g. steps=100)")
        key, value = arg.split("=", 1)
        if key == CONFIG_FILE_KEY:
            path = value
        else:
            overrides.append(arg)
    return path, overrides


def load_config(cls: type[T], args: list[str] | None = None, path: str | None = None) -> T:
    """Build ``cls`` from its defaults, then the YAML at ``path`` (or ``config=`` in ``args``),
    then each ``key=value`` in ``args``. Raises ``ConfigError`` on unknown keys or bad types.
    A config with ``resolve_paths`` (``FinetuneConfig``) has its relative paths found and made
    absolute (``config.paths``: the working directory, beside the YAML, the ray_vlm checkout)."""
    file_path, overrides = split_overrides(args or [])
    path = file_path or path
    cfg = OmegaConf.structured(cls)
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file '{path}' does not exist")
        data = yaml.safe_load(file.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping of keys to values")
        cfg = _merge(cfg, data, origin=path)
    if overrides:
        try:
            dotlist = OmegaConf.from_dotlist(overrides)
        except OmegaConfBaseException as err:
            raise ConfigError(f"command line: {_describe(err)}") from None
        cfg = _merge(cfg, dotlist, origin="command line")
    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:
        raise ConfigError(_describe(err)) from None
    resolve = getattr(obj, "resolve_paths", None)  # relative paths: ``config.paths``' rule
    return resolve(path) if resolve else obj  # type: ignore[return-value]


def config_from_dict(cls: type[T], data: dict[str, Any], origin: str) -> T:
    """``cls`` from its defaults and the plain mapping ``data`` (e.g. a Serve config file's
    ``args``); ``ConfigError`` naming ``origin`` and the key on unknown keys or bad values."""
    cfg = _merge(OmegaConf.structured(cls), data, origin)
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        raise ConfigError(f"{origin}: {_describe(err)}") from None
    except ConfigError as err:
        raise ConfigError(f"{origin}: {err}") from None


def config_to_yaml(cfg: Any) -> str:
    """The resolved config as YAML text (what is written next to every output), its secrets
    masked (``config.secrets``: API keys, credentials in URIs)."""
    return OmegaConf.to_yaml(mask_value("", OmegaConf.to_container(OmegaConf.structured(cfg))))


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config to ``path`` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_to_yaml(cfg))
    return path


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict of the config (for JSON metadata)."""
    return dataclasses.asdict(cfg)

"""One rule for the relative paths a config names, applied on the driver before anything starts.

A relative path is looked up, in order:

1. in the working directory (a path given on the command line, or a user's own config run from
   its folder);
2. beside the YAML that named it (the config file for config keys, the registry for its
   ``annotation`` / ``root_dir`` entries), so a config and what it names can move together;
3. in the ray_vlm checkout (``PACKAGE_ROOT``, the folder holding the shipped ``configs/``), so the
   shipped configs and the defaults (``configs/deepspeed/zero3.json``) work from any folder.

The first that exists wins and becomes absolute (workers may run elsewhere). URIs and absolute
paths are kept as they are. A required file found nowhere is a ``ConfigError`` naming the key
and every place looked in; a model source found nowhere is kept (it may be a hub id, which
``preflight`` checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ray_vlm.config.loader import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The checkout ray_vlm runs from (an editable install): where ``configs/`` is shipped."""


def _is_uri(value: str) -> bool:
    return "://" in value


def search_bases(beside: str | Path | None = None) -> list[Path]:
    """The folders a relative path is looked up in, in order (the rule above)."""
    bases = [Path.cwd()]
    if beside is not None and not _is_uri(str(beside)):
        bases.append(Path(beside).resolve().parent)
    if (PACKAGE_ROOT / "configs").is_dir():
        bases.append(PACKAGE_ROOT)
    return list(dict.fromkeys(bases))


def find(value: str, bases: Sequence[Path]) -> str | None:
    """The absolute path of the first ``base / value`` that exists; ``value`` itself when it is
    a URI or absolute; ``None`` when a relative ``value`` exists under no base."""
    if not value or _is_uri(value) or Path(value).expanduser().is_absolute():
        return value
    for base in bases:
        candidate = base / Path(value).expanduser()
        if candidate.exists():
            return str(candidate.resolve())
    return None


def resolve_required(value: str, key: str, bases: Sequence[Path]) -> str:
    """``find``, or a ``ConfigError`` naming ``key`` and the places looked in."""
    found = find(value, bases)
    if found is None:
        places = ", ".join(str(b) for b in bases)
        raise ConfigError(f"key '{key}': '{value}' does not exist (looked in {places})")
    return found


def resolve_optional(value: str, bases: Sequence[Path]) -> str:
    """``find``, or ``value`` unchanged when it exists nowhere (a hub id, say)."""
    return find(value, bases) or value

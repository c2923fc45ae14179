"""The dataset registry (``configs/datasets.yaml``, PLM layout) and datamix strings.

A registry entry, exactly as in PLM's ``configs/datasets.yaml``::

    radiology_finetune:
        annotation: apps/plm/dummy_datasets/Radiology_mini/train.jsonl
        root_dir: apps/plm/dummy_datasets/Radiology_mini/images

Relative paths are resolved against the working directory, as PLM does (with ``ray job submit
--working-dir .`` that is the submitted folder). ``annotation`` and ``root_dir`` may also be URIs
(``s3://bucket/data/train.jsonl``; see ``ray_vlm.storage``): the Ray Data workers read records and
images from there. ``root_dir`` defaults to ``images/`` beside the annotation file when that folder
exists (the layout of both guides), else the annotation's folder. The registry file itself may be
a URI too.
An entry may give ``question_type``: the type of its records that carry none (see ``Record``).
``format`` is inferred when absent: ``.csv`` -> ``paligemma_csv``; a JSON line with
``conversations`` -> ``plm``; with ``suffix`` -> ``paligemma``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ray_vlm.config import ConfigError
from ray_vlm.config.paths import resolve_optional, search_bases
from ray_vlm.records.lines import json_item
from ray_vlm.storage import Location, reach

FORMATS = ("plm", "paligemma", "paligemma_csv")


@dataclass
class DatasetSpec:
    annotation: str
    """The annotation file: PLM conversations jsonl, PaliGemma JSON-lines, or PaliGemma CSV."""
    root_dir: str | None = None
    """Folder that image names in the annotation are relative to."""
    format: str | None = None
    """One of plm, paligemma, paligemma_csv; inferred from the file when absent."""
    prompt: str = "caption en"
    """User prompt for records that carry none (a PaliGemma record with an empty ``prefix``)."""
    lowercase: bool = False
    """Lower-case answers, as the PaliGemma guide does with its suffixes."""
    question_type: str | None = None
    """Question type of records that carry none (a PLM record's ``question_type`` field wins);
    evaluation reports accuracy per question type."""
    name: str = ""
    """Filled from the registry key."""


@dataclass
class _RegistryFile:
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class DatamixEntry:
    """One datamix source: ``share`` is its weight divided by the sum of all weights."""

    name: str
    weight: float
    share: float


def infer_format(annotation: Location) -> str:
    """Guess the record format of an annotation file from its suffix or first JSON line."""
    if annotation.name.lower().endswith(".csv"):
        return "paligemma_csv"
    for line in annotation.iter_lines():
        first = json_item(line)
        if first is None:
            continue
        if isinstance(first, dict) and "conversations" in first:
            return "plm"
        if isinstance(first, dict) and "suffix" in first:
            return "paligemma"
        break
    raise ConfigError(
        f"{annotation}: cannot infer the record format from its first line; "
        f"set 'format' to one of {', '.join(FORMATS)} in the dataset registry"
    )


def resolve_spec(name: str, spec: DatasetSpec) -> DatasetSpec:
    """Absolute paths (or URIs), a default ``root_dir`` and a known ``format`` for one registry
    entry; ``ConfigError`` when the annotation is missing, ``StorageError`` when unreachable."""
    annotation = reach(spec.annotation, f"dataset '{name}': annotation")
    if not annotation.is_file():
        raise ConfigError(f"dataset '{name}': annotation file '{spec.annotation}' does not exist")
    if spec.root_dir:
        root = Location.of(spec.root_dir)
    else:
        images = annotation.parent / "images"
        root = images if images.is_dir() else annotation.parent
    fmt = spec.format or infer_format(annotation)
    if fmt not in FORMATS:
        raise ConfigError(f"dataset '{name}': format '{fmt}' is not one of {', '.join(FORMATS)}")
    return dataclasses.replace(
        spec, annotation=annotation.uri, root_dir=root.uri, format=fmt, name=name
    )


def load_registry(path: str | os.PathLike) -> dict[str, DatasetSpec]:
    """Read a registry YAML (a path or URI) into ``{name: DatasetSpec}``; a relative
    ``annotation`` / ``root_dir`` found by ``config.paths``' rule (the working directory, beside
    the registry, the ray_vlm checkout) is made absolute, one found nowhere is kept for
    ``resolve_spec`` to report."""
    if not reach(path, "data.datasets_yaml").is_file():
        raise ConfigError(f"dataset registry '{path}' does not exist (set data.datasets_yaml)")
    data = yaml.safe_load(Location.of(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must map dataset names to entries")
    try:
        typed = OmegaConf.to_object(
            OmegaConf.merge(OmegaConf.structured(_RegistryFile), {"datasets": data})
        )
    except OmegaConfBaseException as err:
        key = str(getattr(err, "full_key", "")).removeprefix("datasets.")
        raise ConfigError(f"{path}: entry '{key}': {str(err).splitlines()[0]}") from None
    bases = search_bases(path)
    return {
        name: dataclasses.replace(
            spec,
            name=name,
            annotation=resolve_optional(spec.annotation, bases),
            root_dir=spec.root_dir and resolve_optional(spec.root_dir, bases),
        )
        for name, spec in typed.datasets.items()
    }


def parse_datamix(datamix: str) -> list[DatamixEntry]:
    """Parse ``name_a:1,name_b:3`` (PLM syntax; a bare name weighs 1) into entries with shares."""
    pairs: list[tuple[str, float]] = []
    for item in datamix.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, weight_text = item.partition(":")
        name = name.strip()
        try:
            weight = float(weight_text) if weight_text.strip() else 1.0
        except ValueError:
            raise ConfigError(
                f"datamix '{datamix}': weight '{weight_text}' of '{name}' is not a number"
            ) from None
        if not name or weight <= 0:
            raise ConfigError(
                f"datamix '{datamix}': '{item}' needs a name and a weight > 0 (name:weight)"
            )
        if name in (n for n, _ in pairs):
            raise ConfigError(f"datamix '{datamix}': '{name}' appears twice")
        pairs.append((name, weight))
    if not pairs:
        raise ConfigError("datamix is empty: give at least one 'name:weight'")
    total = sum(w for _, w in pairs)
    return [DatamixEntry(n, w, w / total) for n, w in pairs]


def select_datamix(
    datamix: str, registry_path: str | os.PathLike
) -> list[tuple[DatamixEntry, DatasetSpec]]:
    """The datamix's sources with their resolved registry entries; unknown names are an error."""
    registry = load_registry(registry_path)
    selected = []
    for entry in parse_datamix(datamix):
        if entry.name not in registry:
            known = ", ".join(sorted(registry)) or "none"
            raise ConfigError(
                f"datamix names '{entry.name}', which is not in {registry_path} (known: {known}); "
                "fix the name or add an entry for it there"
            )
        selected.append((entry, resolve_spec(entry.name, registry[entry.name])))
    return selected

"""Every config value ray_vlm reads, with its default: the one place defaults live.

Each field's docstring is its documentation. Load with ``ray_vlm.config.load_config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ray_vlm.config.loader import ConfigError

BAD_RECORD_POLICIES = ("skip", "fail")


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ``ConfigError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"key '{key}': '{value}' is not one of {', '.join(choices)}")


@dataclass
class DataConfig:
    datamix: str = "demo_captions:1"
    """Sources and their weights, PLM syntax ``name_a:1,name_b:3``; names from ``datasets_yaml``."""
    datasets_yaml: str = "configs/datasets.yaml"
    """Registry mapping a dataset name to ``{annotation, root_dir, format}`` (PLM layout)."""
    bad_records: str = "skip"
    """``skip``: count and report invalid records, go on; ``fail``: stop at the first one."""
    verify_images: bool = True
    """Decode every image while validating (catches truncated or non-image files early)."""

    def __post_init__(self) -> None:
        check_choice("data.bad_records", self.bad_records, BAD_RECORD_POLICIES)


@dataclass
class CheckpointConfig:
    init_ckpt_path: str = "demo_out/assets/models/llava"
    """Initial weights: a hub id (``facebook/Perception-LM-8B``) or a local Hugging Face directory."""


@dataclass
class FinetuneConfig:
    dump_dir: str = "demo_out/runs/finetune"
    """Where checkpoints, logs, metrics and the resolved config are written."""
    steps: int = 100
    """Total optimizer steps."""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

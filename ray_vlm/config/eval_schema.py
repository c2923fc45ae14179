"""Every setting of ``ray-vlm evaluate`` with its default. Each field's docstring documents it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ray_vlm.config.loader import ConfigError
from ray_vlm.config.serve_schema import ServeConfig

TASKS = ("caption", "vqa", "exact")


def _eval_serve_defaults() -> ServeConfig:
    return ServeConfig(app_name="ray_vlm_eval")


@dataclass
class EvalConfig:
    ckpt: str = "demo_out/runs/finetune"
    """Model to score: an exported Hugging Face directory, a checkpoint step dir, a run's
    ``dump_dir`` (its latest checkpoint) or a hub id."""
    compare: str = ""
    """A second model (e.g. the base model) scored on the same records; the report shows the
    two side by side (before vs after)."""
    data: str = "demo_captions_test"
    """Registry name of the split to score (``datasets_yaml``)."""
    datasets_yaml: str = "configs/datasets.yaml"
    task: str = "caption"
    """``caption``: CIDEr-D (+ BLEU-4, ROUGE-L); ``vqa``: VQA accuracy (+ VQA-RAD closed accuracy
    and open recall); ``exact``: normalised exact match (the PaliGemma prescription task)."""
    out_dir: str = "demo_out/eval"
    """Where ``predictions.jsonl``, ``metrics.json`` and ``report.html`` are written."""
    max_new_tokens: int = 32
    """Longest generated answer (greedy decoding)."""
    batch_size: int = 16
    """Records one Ray Data batch sends to the replicas at once (they batch across senders)."""
    concurrency: int = 2
    """Ray Data actors sending batches to the replicas."""
    connect_app: str = ""
    """Name of a running Serve application to use instead of starting one (it must serve
    ``ckpt``); empty: start ``serve.app_name`` for each model and shut it down after."""
    serve: ServeConfig = field(default_factory=_eval_serve_defaults)
    """Replicas started for the evaluation (``serve.ckpt`` is set from ``ckpt``/``compare``)."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"key 'task': '{self.task}' is not one of {', '.join(TASKS)}")
        if self.batch_size < 1 or self.concurrency < 1 or self.max_new_tokens < 1:
            raise ConfigError("keys 'batch_size', 'concurrency', 'max_new_tokens': must be >= 1")

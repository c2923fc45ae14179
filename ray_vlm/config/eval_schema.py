"""Every setting of ``ray-vlm evaluate`` with its default. Each field's docstring documents it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ray_vlm.config.loader import ConfigError
from ray_vlm.config.paths import resolve_optional, resolve_required, search_bases
from ray_vlm.config.serve_schema import BatchingConfig, ServeConfig

TASKS = ("caption", "vqa", "exact")


def _eval_serve_defaults() -> ServeConfig:
    return ServeConfig(app_name="ray_vlm_eval", batching=BatchingConfig(max_batch_size=32))


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
    batch_size: int = 0
    """Records sent to a replica in one call (one Ray Data batch); the replica generates them in
    groups of at most ``serve.batching.max_batch_size`` of similar prompt length.
    0: ``serve.batching.max_batch_size`` (one ``model.generate`` call per batch)."""
    batches_in_flight: int = 0
    """Batches sent to the replicas and not yet answered. 0: four per generation replica
    (``serve.replicas.max_replicas``): each replica prepares its next batch (image decoding,
    processor) while it generates the current one, and two more wait there as records, so the
    answers' round trip to the sender leaves no replica idle (a replica holds the model inputs of
    at most two batches, however many wait)."""
    connect_app: str = ""
    """Name of a running Serve application to use instead of starting one (it must serve
    ``ckpt``); empty: start ``serve.app_name`` for each model and shut it down after."""
    serve: ServeConfig = field(default_factory=_eval_serve_defaults)
    """Replicas started for the evaluation (``serve.ckpt`` is set from ``ckpt``/``compare``)."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"key 'task': '{self.task}' is not one of {', '.join(TASKS)}")
        if self.batch_size < 0 or self.batches_in_flight < 0:
            raise ConfigError(
                "keys 'batch_size', 'batches_in_flight': must be >= 0 (0: the default)"
            )
        if self.max_new_tokens < 1:
            raise ConfigError("key 'max_new_tokens': must be >= 1")

    def resolve_paths(self, config_file: str | None = None) -> EvalConfig:
        """This config with its relative paths found by ``config.paths``' rule and made absolute:
        the registry must exist (``ConfigError`` naming the key); the models may be hub ids."""
        bases = search_bases(config_file)
        return replace(
            self,
            datasets_yaml=resolve_required(self.datasets_yaml, "datasets_yaml", bases),
            ckpt=resolve_optional(self.ckpt, bases),
            compare=resolve_optional(self.compare, bases),
        )

    @property
    def records_per_batch(self) -> int:
        return self.batch_size or self.serve.batching.max_batch_size

    @property
    def in_flight(self) -> int:
        return self.batches_in_flight or 4 * self.serve.replicas.max_replicas

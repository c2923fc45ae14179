"""Fine-tune, then export: what ``ray-vlm train`` and ``jobs/finetune.py`` run.

``train_and_export(cfg)`` trains (or resumes) ``cfg`` and consolidates the final checkpoint into
its ``consolidated/`` folder (``<dump_dir>/checkpoints/<step>/consolidated``, in the bucket when
``dump_dir`` is one), a Hugging Face directory plain ``transformers`` loads, and tags the run's
MLflow run with its location when ``logging.mlflow_tracking_uri`` is set;
``resolve_model_dir(dump_dir)`` finds the same folder.
"""

from __future__ import annotations

from dataclasses import dataclass

from ray_vlm.config import FinetuneConfig
from ray_vlm.export.resolve import consolidate_at
from ray_vlm.storage import Location
from ray_vlm.train.tracking import log_export
from ray_vlm.train.trainer import TrainResult, train


@dataclass(frozen=True)
class FinetuneOutput:
    result: TrainResult
    hf_dir: Location
    """The final checkpoint as a Hugging Face directory."""


def train_and_export(cfg: FinetuneConfig) -> FinetuneOutput:
    """Train ``cfg`` (resuming what ``dump_dir`` holds) and export its final checkpoint."""
    result = train(cfg)
    hf_dir = consolidate_at(result.checkpoint)
    log_export(cfg, hf_dir)
    return FinetuneOutput(result, hf_dir)

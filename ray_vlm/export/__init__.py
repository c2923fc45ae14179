"""Stage 5 of the flow: ZeRO-3 checkpoints -> Hugging Face directories, and finding a model dir."""

from ray_vlm.export.consolidate import consolidate
from ray_vlm.export.layout import ExportError
from ray_vlm.export.resolve import consolidate_at, locate_model, resolve_model_dir

__all__ = ["ExportError", "consolidate", "consolidate_at", "locate_model", "resolve_model_dir"]

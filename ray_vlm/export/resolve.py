"""Any way of naming a model -> a directory (or hub id) ``from_pretrained`` loads.

``resolve_model_dir(ckpt)`` accepts, in this order:

- a Hugging Face directory (has ``config.json``): returned as is;
- a complete checkpoint step dir (``layout.is_step_dir``): its ``consolidated/`` folder,
  consolidated first if not done yet. Serve replicas may do this at the same moment: each
  consolidates into a private folder and the first to finish publishes it; the others keep that
  one (``consolidate(..., replace=False)``), so a folder a replica is loading never changes;
- a run's ``dump_dir`` (has ``checkpoints/``): the same, for its latest complete checkpoint;
- a hub id (``org/name``, not an existing path): returned as is.
"""

from __future__ import annotations

from pathlib import Path

from ray_vlm.export.consolidate import consolidate
from ray_vlm.export.layout import CONSOLIDATED_DIR, ExportError, is_step_dir, latest_step_dir
from ray_vlm.train.run_state import CHECKPOINTS


def _consolidated(step_dir: Path) -> str:
    out = step_dir / CONSOLIDATED_DIR
    if (out / "config.json").is_file():
        return str(out)
    return str(consolidate(step_dir, out, replace=False))


def resolve_model_dir(ckpt: str) -> str:
    """A local Hugging Face directory or hub id for ``ckpt`` (forms in the module docstring)."""
    path = Path(ckpt).expanduser()
    if (path / "config.json").is_file():
        return str(path)
    if is_step_dir(path):
        return _consolidated(path)
    if (path / CHECKPOINTS).is_dir():
        return _consolidated(latest_step_dir(path))
    if path.exists():
        raise ExportError(
            f"{ckpt}: not a Hugging Face directory (config.json), a checkpoint step dir "
            f"(train_state_*.json, config.yaml, hf/) or a run dump_dir ({CHECKPOINTS}/)"
        )
    if ckpt.startswith(("/", ".", "~")) or ckpt.count("/") > 1:
        raise ExportError(f"{ckpt}: no such directory (and not a hub id like org/name)")
    return ckpt

"""Any way of naming a model -> where its Hugging Face directory is, and a local copy of it.

``ckpt`` is tried as, in this order (each a local path, a shared-filesystem path or a URI such as
``s3://bucket/runs/a``, see ``ray_vlm.storage``):

- a Hugging Face directory (has ``config.json``);
- a complete checkpoint step dir (``layout.is_step_dir``): its ``consolidated/`` folder,
  consolidated first if not done yet (or not finished: no ``layout.EXPORT_COMPLETE`` in it, as
  an upload cut off midway leaves it; the export is written again, its marker uploaded last).
  Serve replicas may do this at the same moment: each
  consolidates into a private folder and the first to finish publishes it; the others keep that
  one (``consolidate(..., replace=False)``), so a folder a replica is loading never changes;
- a run's ``dump_dir`` (has ``checkpoints/``): the same, for its latest complete checkpoint;
- a hub id (``org/name``, not an existing path).

``locate_model(ckpt)`` runs on the driver before anything starts: it returns where the Hugging Face
directory is (path or URI; consolidating first) or the hub id, once the hub answered for it.
``resolve_model_dir(ckpt)`` returns what ``from_pretrained`` loads on this machine: a local folder
(one in a bucket is downloaded once into the local cache) or the hub id.
``consolidate_at(step_dir, out)`` consolidates a checkpoint wherever it is: of a remote one, what
consolidation reads is downloaded to the local cache (``checkpoint_fetch``: not the optimizer's
moments), consolidated beside it and uploaded to ``out``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ray_vlm.export.checkpoint_fetch import fetch_for_export
from ray_vlm.export.consolidate import consolidate
from ray_vlm.export.layout import (
    CONSOLIDATED_DIR,
    EXPORT_COMPLETE,
    ExportError,
    is_step_dir,
    latest_step_dir,
)
from ray_vlm.preflight import check_hub_model, hub_id_shaped
from ray_vlm.storage import Location, is_uri, reach
from ray_vlm.train.run_state import CHECKPOINTS, state_file


def _version(loc: Location, marker: str) -> str:
    """Changes when the folder is written again (the cache key of its local copy)."""
    return str((loc / marker).info().mtime_ns)


def consolidate_at(
    step_dir: str | os.PathLike | Location,
    out: str | os.PathLike | Location | None = None,
    replace: bool = True,
) -> Location:
    """``consolidate`` for checkpoints and outputs anywhere (default ``<step_dir>/consolidated``);
    ``replace``: as ``consolidate``'s (an existing local export is replaced, or kept)."""
    step = Location.of(step_dir)
    out = Location.of(out) if out else step / CONSOLIDATED_DIR
    if step.is_local and out.is_local:
        return Location.of(consolidate(step.local_path, out.local_path, replace=replace))
    if not is_step_dir(step):
        raise ExportError(
            f"{step}: not a complete checkpoint step dir (needs every rank's train_state_*.json, "
            "config.yaml, hf/config.json)"
        )
    version = _version(step, state_file(0))  # a checkpoint written again is consolidated again
    local_step = step.local_copy(version=version, fetch=fetch_for_export)
    if out.is_local:
        consolidate(local_step, out.local_path, replace=replace)
        return out
    with tempfile.TemporaryDirectory(dir=local_step.parent, prefix=".export.") as staging:
        return out.upload(consolidate(local_step, Path(staging) / "out"), last=EXPORT_COMPLETE)


def _consolidated(step_dir: Location) -> Location:
    """The step dir's export, written (again) unless complete (``EXPORT_COMPLETE``: an upload cut
    off midway is never loaded)."""
    out = step_dir / CONSOLIDATED_DIR
    if (out / EXPORT_COMPLETE).is_file():
        return out
    return consolidate_at(step_dir, out, replace=False)


def _located(ckpt: str, key: str) -> Location | None:
    """The Hugging Face directory ``ckpt`` names (consolidated if needed); ``None``: a hub id."""
    if not is_uri(ckpt) and not Path(ckpt).expanduser().exists():
        if not hub_id_shaped(ckpt):
            raise ExportError(f"{ckpt}: no such directory (and not a hub id like org/name)")
        return None
    loc = reach(ckpt, key)
    if loc.name == CONSOLIDATED_DIR and is_step_dir(loc.parent):
        return _consolidated(loc.parent)
    if (loc / "config.json").is_file():
        return loc
    if is_step_dir(loc):
        return _consolidated(loc)
    if (loc / CHECKPOINTS).is_dir():
        return _consolidated(latest_step_dir(loc))
    if not loc.exists():
        raise ExportError(f"{ckpt}: no such folder (a URI must name a folder holding a model)")
    raise ExportError(
        f"{ckpt}: not a Hugging Face directory (config.json), a checkpoint step dir "
        f"(train_state_*.json, config.yaml, hf/) or a run dump_dir ({CHECKPOINTS}/)"
    )


def locate_model(ckpt: str, key: str = "ckpt") -> str:
    """Where the Hugging Face directory of ``ckpt`` is (local path or URI), or the hub id after
    checking that the hub serves it; ``UserError`` naming ``key`` otherwise."""
    where = _located(ckpt, key)
    if where is None:
        check_hub_model(ckpt, key)
        return ckpt
    return where.uri


def resolve_model_dir(ckpt: str) -> str:
    """A local Hugging Face directory or hub id for ``ckpt`` (forms in the module docstring)."""
    where = _located(ckpt, "ckpt")
    if where is None:
        return ckpt
    if where.is_local:
        return str(where.local_path)
    return str(where.local_copy(version=_version(where, "config.json")))

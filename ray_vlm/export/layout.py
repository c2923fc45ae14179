"""What export reads in a checkpoint step dir, beyond the layout ``ray_vlm.train.run_state`` writes.

A *step dir* ``<dump_dir>/checkpoints/<step, 10 digits>/`` (local or in a bucket: any
``ray_vlm.storage.Location``) is complete when every rank's ``train_state_*.json`` is there
(``run_state.read_state``) along with ``config.yaml`` (the resolved ``FinetuneConfig``: its
``model`` section says if LoRA trained), ``hf/config.json`` (the base model's config, generation
config and processor) and DeepSpeed's ``latest`` + ``ds/`` shards. ``consolidate`` adds
``consolidated/``, a loadable Hugging Face directory, complete once ``EXPORT_COMPLETE`` is in it.
"""

from __future__ import annotations

import os

from ray_vlm.config import CONFIG_FILE, UserError
from ray_vlm.storage import Location
from ray_vlm.train.run_state import CHECKPOINTS, HF_DIR, latest_state, read_state, step_dir_name

CONSOLIDATED_DIR = "consolidated"
EXPORT_COMPLETE = "ray_vlm_export_complete"
"""Written last into an export (``consolidate``; uploaded last to a bucket): an export without it
is unfinished (a crash or a lost connection mid-upload) and is never loaded, only written again."""


class ExportError(UserError):
    """A checkpoint or model path a user must fix; the message names the path."""


def is_step_dir(path: str | os.PathLike | Location) -> bool:
    """Whether ``path`` holds a complete checkpoint (every rank's state, config, ``hf/``)."""
    path = Location.of(path)
    return (
        read_state(path) is not None
        and (path / CONFIG_FILE).is_file()
        and (path / HF_DIR / "config.json").is_file()
    )


def latest_step_dir(dump_dir: str | os.PathLike | Location) -> Location:
    """The newest complete step dir under ``dump_dir/checkpoints``."""
    dump_dir = Location.of(dump_dir)
    state = latest_state(dump_dir)
    if state is None:
        raise ExportError(f"{dump_dir / CHECKPOINTS}: no complete checkpoint found")
    return dump_dir / CHECKPOINTS / step_dir_name(state.step)

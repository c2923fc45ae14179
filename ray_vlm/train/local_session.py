"""The ``Session`` of a process ``torchrun`` started: training without Ray (``local_run.py``).

For a machine with torch, transformers and DeepSpeed but no Ray (the GPU checks of
``tests/gpu``), and for debugging one node. ``torch.distributed`` is initialised by
``local_run``; each rank reads and encodes its own share of the plan in-process (``chunk_records``
+ ``encode_records``, no Ray Data), resumes from the newest complete checkpoint in
``<dump_dir>/checkpoints`` and stores each checkpoint there itself: every rank copies its part,
its ``train_state_*.json`` last (a checkpoint counts once every rank's state is there:
``run_state.read_state``), then all ranks wait for each other; rank 0 keeps the newest
``checkpoint.dump.keep`` (0: all).
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch.distributed as dist

from ray_vlm.config import FinetuneConfig
from ray_vlm.preprocess.bad_records import raise_on_fail
from ray_vlm.preprocess.chunk_records import encoded_rows, run_encoder
from ray_vlm.preprocess.encode import Encoder
from ray_vlm.preprocess.stream_plan import Chunk
from ray_vlm.storage import Location
from ray_vlm.train.run_state import CHECKPOINTS, latest_state, state_file, step_dir_name


class LocalSession:
    def __init__(self, cfg: FinetuneConfig) -> None:
        self.cfg = cfg
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.checkpoints = Location.of(cfg.dump_dir) / CHECKPOINTS
        self.left_out: Counter[tuple[str, str]] = Counter()
        """``(dataset, kind)`` -> records this rank left out or truncated."""

    @contextlib.contextmanager
    def restored(self) -> Iterator[Path | None]:
        state = latest_state(self.cfg.dump_dir)
        if state is None:
            yield None
            return
        name = step_dir_name(state.step)
        yield (self.checkpoints / name).local_copy(version=name)

    @functools.cached_property
    def _encoder(self) -> Encoder:
        """One processor for the training and the validation rows."""
        return run_encoder(self.cfg)

    def rows(self, pieces: list[Chunk]) -> Iterable[dict[str, Any]]:
        return encoded_rows(pieces, self._encoder, self._take)

    def _take(self, items: list[dict[str, str]]) -> None:
        for item in items:
            self.left_out[(item["dataset"], item["kind"])] += 1
        raise_on_fail(items, self.cfg.data.bad_records)

    def report(self, metrics: dict, folder: Path, name: str) -> None:
        target = self.checkpoints / name
        state = folder / state_file(self.rank)
        held = state.read_bytes()
        state.unlink()
        target.upload(folder)
        (target / state.name).write_bytes(held)
        dist.barrier()
        keep = self.cfg.checkpoint.dump.keep
        if self.rank == 0 and keep > 0:
            steps = sorted((d for d in self.checkpoints.iterdir() if d.name.isdigit()), key=str)
            for old in steps[:-keep]:
                old.delete()

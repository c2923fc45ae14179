"""Train state saved by every rank next to its DeepSpeed shards, and the checkpoint layout.

``<dump_dir>/checkpoints/<step, 10 digits>/`` holds (the layout ``ray_vlm.export`` reads):

- ``ds/zero_pp_rank_<r>_mp_rank_00_{model,optim}_states.pt`` + ``latest`` (``engine.save_checkpoint``
  of every rank, tag ``ds``);
- ``train_state_<rank, 5 digits>.json``: a ``TrainState`` per rank;
- ``config.yaml``: the resolved ``FinetuneConfig``;
- ``hf/``: the base model's config, generation config and processor (rank 0).

The data position is ``samples``: examples consumed by all ranks together. A resumed run skips
them: the driver drops the whole plan chunks they cover (``plan_offset``), each rank skips its share
of the rest (``skip_rows``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from ray_vlm.storage import Location

CHECKPOINTS = "checkpoints"
DS_TAG = "ds"
HF_DIR = "hf"


@dataclass(frozen=True)
class TrainState:
    step: int
    """Optimizer steps done."""
    samples: int
    """Examples consumed by all ranks together (the data position)."""
    world_size: int
    rank: int
    seed: int

    def save(self, folder: str | os.PathLike | Location) -> Location:
        path = Location.of(folder) / state_file(self.rank)
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike | Location) -> TrainState:
        return cls(**json.loads(Location.of(path).read_text()))


def state_file(rank: int) -> str:
    return f"train_state_{rank:05d}.json"


def step_dir_name(step: int) -> str:
    return f"{step:010d}"


def read_state(step_dir: str | os.PathLike | Location) -> TrainState | None:
    """Rank 0's state of a checkpoint (a folder anywhere ``Location`` reaches) when every rank's
    state is there, else ``None``."""
    step_dir = Location.of(step_dir)
    names = {entry.name for entry in step_dir.iterdir()}
    if state_file(0) not in names:
        return None
    state = TrainState.load(step_dir / state_file(0))
    complete = all(state_file(r) in names for r in range(state.world_size))
    return state if complete else None


def latest_state(dump_dir: str | os.PathLike | Location) -> TrainState | None:
    """The state of the newest complete checkpoint under ``dump_dir/checkpoints``, if any."""
    folder = Location.of(dump_dir) / CHECKPOINTS
    steps = [d for d in folder.iterdir() if len(d.name) == 10 and d.name.isdigit()]
    for step_dir in reversed(steps):
        state = read_state(step_dir)
        if state is not None:
            return state
    return None


def skip_rows(samples: int, plan_offset: int, world_size: int) -> int:
    """Rows each rank skips on resume: its share of what the trimmed plan still holds."""
    return max(0, samples - plan_offset) // world_size

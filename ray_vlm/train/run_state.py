"""Train state saved by every rank next to its DeepSpeed shards, and the checkpoint layout.

``<dump_dir>/checkpoints/<step, 10 digits>/`` holds (the layout ``ray_vlm.export`` reads):

- ``ds/zero_pp_rank_<r>_mp_rank_00_{model,optim}_states.pt`` + ``latest`` (``engine.save_checkpoint``
  of every rank, tag ``ds``);
- ``train_state_<rank, 5 digits>.json``: a ``TrainState`` per rank, with the rank's exact data
  position (``data_order.RankPosition``);
- ``data_order.json``: the ``DataOrder`` the ranks' positions refer to (rank 0);
- ``config.yaml``: the resolved ``FinetuneConfig``;
- ``hf/``: the base model's config, generation config and processor (rank 0).

The run's data plan itself is ``<dump_dir>/data_plan.json`` (``trainer.py``), written once and only
ever extended, so the positions of every checkpoint keep their meaning.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from ray_vlm.storage import Location
from ray_vlm.train.data_order import DataOrder, RankPosition

CHECKPOINTS = "checkpoints"
DS_TAG = "ds"
HF_DIR = "hf"
DATA_ORDER = "data_order.json"
RAY_SNAPSHOT = "checkpoint_manager_snapshot.json"
"""Ray Train's record of the checkpoints it registered (in ``<dump_dir>/checkpoints``)."""


@dataclass(frozen=True)
class TrainState:
    step: int
    """Optimizer steps done."""
    samples: int
    """Examples consumed by all ranks together (the data position)."""
    world_size: int
    rank: int
    seed: int
    position: RankPosition = field(default_factory=RankPosition)
    """This rank's place in the checkpoint's ``DataOrder``."""

    def save(self, folder: str | os.PathLike | Location) -> Location:
        path = Location.of(folder) / state_file(self.rank)
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike | Location) -> TrainState:
        data = json.loads(Location.of(path).read_text())
        p = data.pop("position")
        position = RankPosition(p["next_index"], p["window"], tuple(p["done"]))
        return cls(**data, position=position)


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
    """The state of the newest checkpoint under ``dump_dir/checkpoints``: the one Ray Train
    registered last (what it resumes from), or without Ray's record the newest complete one."""
    folder = Location.of(dump_dir) / CHECKPOINTS
    snapshot = folder / RAY_SNAPSHOT
    if snapshot.exists():
        latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result")
        return read_state(folder / latest["checkpoint_dir_name"]) if latest else None
    steps = [d for d in folder.iterdir() if len(d.name) == 10 and d.name.isdigit()]
    for step_dir in reversed(steps):
        state = read_state(step_dir)
        if state is not None:
            return state
    return None


def data_position(
    step_dir: str | os.PathLike | Location,
) -> tuple[DataOrder, dict[int, RankPosition]]:
    """The data order of a complete checkpoint and every rank's position in it."""
    step_dir = Location.of(step_dir)
    order = DataOrder.from_dict(json.loads((step_dir / DATA_ORDER).read_text()))
    ranks = range(order.world)
    return order, {r: TrainState.load(step_dir / state_file(r)).position for r in ranks}

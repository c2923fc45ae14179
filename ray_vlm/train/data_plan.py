"""The run's data plan on storage, and where training starts in it (the driver's side of
``data_order``).

``<dump_dir>/data_plan.json`` holds the datamix and the planned chunks (``stream_plan``): written
at the first start and afterwards only extended, so plan positions keep their meaning across
resumes. ``data_start`` reads the newest checkpoint's ``DataOrder`` and rank positions (deals the
untrained positions anew when the world size changed) and extends plan and order when what is
left would not last the remaining steps: ``steps left x global batch`` records plus a margin for
records the pipeline rejects (``MARGIN``) and one length-grouping window per rank. The validation
plan (``eval.datamix``, ``run_start``) travels beside it, planned anew each start: nothing trains
on it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ray_vlm.config import ConfigError, FinetuneConfig, UserError
from ray_vlm.preprocess.stream_plan import Chunk, plan_from_json, plan_to_json, plan_weighted
from ray_vlm.records import DatamixEntry, DatasetSpec
from ray_vlm.storage import Location
from ray_vlm.train.data_order import DataOrder, RankPosition
from ray_vlm.train.run_state import CHECKPOINTS, TrainState, data_position, step_dir_name

PLAN_FILE = "data_plan.json"
MARGIN = 0.1
"""Extra share of records planned for those the pipeline rejects (invalid, too long)."""


@dataclass(frozen=True)
class DataStart:
    plan: list[Chunk]
    order: DataOrder
    positions: dict[int, RankPosition]
    """Every rank's position in ``order`` (all at 0 for a fresh or resharded order)."""
    step: int
    """The checkpoint step these come from (0: none)."""
    validation: tuple[Chunk, ...] = ()
    """The validation plan: every record of ``eval.datamix`` once (empty: no validation)."""


def window_size(cfg: FinetuneConfig) -> int:
    """Examples a rank groups by length at a time."""
    group = cfg.data.length_group_batches if cfg.data.group_by_length else 1
    return cfg.batch_size * group


def _records_needed(cfg: FinetuneConfig, steps_done: int) -> int:
    world = cfg.distributed.num_workers
    per_step = cfg.batch_size * cfg.grad_acc_steps * world
    left = max(0, cfg.steps - steps_done) * per_step
    return math.ceil(left * (1 + MARGIN)) + world * window_size(cfg)


def _read_plan(file: Location, datamix: str) -> list[Chunk]:
    if not file.exists():
        return []
    try:
        saved = json.loads(file.read_text())
    except json.JSONDecodeError as err:  # not by ray_vlm: it writes the file whole
        raise UserError(
            f"{file} is damaged ({err}), so the run cannot resume on "
            "the same records; restore it or train into a new dump_dir"
        ) from None
    if saved["datamix"] != datamix:
        raise ConfigError(
            f"key 'data.datamix': {file.parent} holds a run planned for datamix "
            f"'{saved['datamix']}', not '{datamix}'; resume it unchanged or use a new dump_dir"
        )
    return plan_from_json(saved["chunks"])


def data_start(
    cfg: FinetuneConfig,
    sources: list[tuple[DatamixEntry, DatasetSpec]],
    state: TrainState | None,
) -> DataStart:
    """Plan, order and rank positions this run starts from (the plan file updated if extended)."""
    dump_dir = Location.of(cfg.dump_dir)
    world = cfg.distributed.num_workers
    file = dump_dir / PLAN_FILE
    plan = _read_plan(file, cfg.data.datamix)
    fresh = {r: RankPosition() for r in range(world)}
    if state is None:
        order, positions = DataOrder.fresh(0, world), fresh
    else:
        order, positions = data_position(dump_dir / CHECKPOINTS / step_dir_name(state.step))
        if order.world != world:
            order, positions = order.reshard(positions, world), fresh
    end = sum(c.limit for c in plan)
    order = order.extended(end)
    missing = _records_needed(cfg, state.step if state else 0) - order.left(positions)
    if missing > 0:
        extra = plan_weighted(sources, missing, cfg.seed + end, first=end)
        plan = plan + extra
        order = order.extended(end + sum(c.limit for c in extra))
        file.write_text(json.dumps({"datamix": cfg.data.datamix, "chunks": plan_to_json(plan)}))
    return DataStart(plan, order, positions, state.step if state else 0)

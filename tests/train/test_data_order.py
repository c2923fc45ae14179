"""Plan positions, their deal to ranks, and where a (resumed, resharded, extended) run starts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ray_vlm.config import ConfigError, FinetuneConfig, load_config
from ray_vlm.preprocess.chunk_records import chunk_records
from ray_vlm.preprocess.stream_plan import pieces, plan_from_json, plan_to_json, plan_weighted
from ray_vlm.records import DatamixEntry, DatasetSpec
from ray_vlm.train.data_order import DataOrder, RankPosition
from ray_vlm.train.data_plan import PLAN_FILE, data_start
from ray_vlm.train.run_state import DATA_ORDER, TrainState, step_dir_name


def test_positions_are_dealt_round_robin_and_found_again() -> None:
    order = DataOrder(((0, 5), (8, 12)), world=2)
    assert list(order.sequence(0)) == [0, 2, 4, 9, 11]
    assert list(order.sequence(1, start=1)) == [3, 8, 10]
    assert [order.length(r) for r in (0, 1)] == [5, 4]
    assert order.index(0, 9) == 3 and order.index(1, 10) == 3
    with pytest.raises(ValueError, match="rank 1"):
        order.index(0, 3)
    assert order.extended(14).remaining == ((0, 5), (8, 12), (12, 14))
    assert DataOrder.from_dict(order.to_dict()) == order


def test_a_reshard_deals_exactly_the_untrained_positions_anew() -> None:
    order = DataOrder.fresh(20, world=2)
    # rank 0 trained 0, 2, 4 and 8 of a window starting at index 3 (6, 8, 10, 12)
    positions = {0: RankPosition(3, 1, (8,)), 1: RankPosition(2, 1)}
    assert order.left(positions) == 20 - 4 - 2
    resharded = order.reshard(positions, world=3)
    trained = {0, 2, 4, 8, 1, 3}
    dealt = [p for r in range(3) for p in resharded.sequence(r)]
    assert sorted(dealt) == sorted(set(range(20)) - trained)
    assert list(resharded.sequence(0))[:3] == [5, 9, 12]  # 5 6 7 9 10 11 12 ... in turn


def _lines(tmp_path: Path, name: str, n: int) -> DatasetSpec:
    path = tmp_path / f"{name}.jsonl"
    rows = [
        f'{{"id": {i}, "conversations": [{{"from": "human", "value": "q{i}"}}, '
        f'{{"from": "gpt", "value": "{name}{i}"}}]}}'
        for i in range(n)
    ]
    path.write_text("\n".join(rows) + "\n")
    return DatasetSpec(name=name, annotation=str(path), root_dir=str(tmp_path), format="plm")


def test_pieces_read_exactly_a_ranks_positions_in_plan_order(tmp_path: Path) -> None:
    a, b = _lines(tmp_path, "a", 150), _lines(tmp_path, "b", 40)
    sources = [(DatamixEntry("a", 1.0, 0.5), a), (DatamixEntry("b", 1.0, 0.5), b)]
    plan = plan_weighted(sources, 300, seed=3)
    assert plan_from_json(plan_to_json(plan)) == plan
    everything = [r for chunk in plan for r in chunk_records(chunk)[0]]
    assert [r.position for r in everything] == list(range(300))
    order = DataOrder.fresh(300, world=2)
    mine = list(order.sequence(1, start=7))
    read = [r for chunk in pieces(plan, mine) for r in chunk_records(chunk)[0]]
    assert [r.position for r in read] == mine
    assert [r.source for r in read] == [everything[p].source for p in mine]


def _cfg(tmp_path: Path, *overrides: str) -> FinetuneConfig:
    return load_config(
        FinetuneConfig,
        [f"dump_dir={tmp_path / 'run'}", "steps=10", "batch_size=2", "data.datamix=a:1",
         "data.length_group_batches=4", "distributed.num_workers=2", *overrides],
    )  # fmt: skip


def _save(cfg: FinetuneConfig, step: int, order: DataOrder, positions: dict) -> TrainState:
    folder = Path(cfg.dump_dir) / "checkpoints" / step_dir_name(step)
    folder.mkdir(parents=True)
    (folder / DATA_ORDER).write_text(__import__("json").dumps(order.to_dict()))
    for rank, position in positions.items():
        TrainState(step, 0, order.world, rank, 0, position).save(folder)
    return TrainState(step, 0, order.world, 0, 0, positions[0])


def test_data_start_plans_once_then_resumes_reshards_and_extends(tmp_path: Path) -> None:
    a = _lines(tmp_path, "a", 50)
    sources = [(DatamixEntry("a", 1.0, 1.0), a)]
    cfg = _cfg(tmp_path)
    (tmp_path / "run").mkdir()
    fresh = data_start(cfg, sources, None)
    # 10 steps x 4 records + 10% margin + a window of 8 per rank
    assert fresh.order == DataOrder.fresh(44 + 16, 2)
    assert (tmp_path / "run" / PLAN_FILE).exists()
    positions = {0: RankPosition(8, 2), 1: RankPosition(6, 1, (9, 13))}
    state = _save(cfg, 4, fresh.order, positions)
    same = data_start(cfg, sources, state)
    assert same.plan == fresh.plan and same.order == fresh.order and same.positions == positions
    resharded = data_start(_cfg(tmp_path, "distributed.num_workers=1"), sources, state)
    assert resharded.positions == {0: RankPosition()}
    trained = Counter(list(fresh.order.sequence(0))[:8] + list(fresh.order.sequence(1))[:6])
    assert not trained & Counter(resharded.order.sequence(0))
    assert resharded.plan[: len(fresh.plan)] == fresh.plan
    longer = data_start(_cfg(tmp_path, "steps=40"), sources, state)
    assert longer.order.left(positions) >= 36 * 4
    assert longer.plan[: len(fresh.plan)] == fresh.plan
    with pytest.raises(ConfigError, match="data.datamix"):
        data_start(_cfg(tmp_path, "data.datamix=a:2"), sources, state)

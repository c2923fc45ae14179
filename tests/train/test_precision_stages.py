"""Precision and ZeRO stages other than the default ZeRO-3 fp32, on CPU.

- ``train(cfg)`` (real Ray Train, 2 workers, real DeepSpeed on gloo) with ZeRO-0 in fp32 (where
  DeepSpeed keeps no gradient norm; the session's ``zero0_tracked`` run) and ZeRO-1 in bf16: every
  ``metrics.jsonl`` line has a finite, positive ``grad_norm`` and a finite loss, and each run's
  saved weights are in its precision.
- ``GradNorm`` under ZeRO-0 equals the norm DeepSpeed's ZeRO-1 optimizer computes on the same
  model, data and 2 ranks (each with its own micro-batches, 2 accumulated), before clipping.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from ray_vlm.config import FinetuneConfig, load_config
from tests.conftest import REPO
from tests.train.conftest import stage_cfg


def _assert_finite_grad_norms_and_weights_in(result, precision: str) -> None:
    assert [m["step"] for m in result.metrics] == [1, 2, 3]
    for row in result.metrics:
        assert math.isfinite(row["grad_norm"]) and row["grad_norm"] > 0, row
        assert math.isfinite(row["loss"]), row
    states = list((Path(result.checkpoint.uri) / "ds").rglob("*model_states.pt"))
    module = torch.load(states[0], map_location="cpu", weights_only=False)["module"]
    dtypes = {t.dtype for t in module.values() if t.is_floating_point()}
    assert dtypes == {torch.bfloat16 if precision == "bf16" else torch.float32}


@pytest.mark.slow
def test_zero0_fp32_trains_with_a_finite_grad_norm(zero0_tracked) -> None:
    cfg, out = zero0_tracked  # the shared run (tests/train/conftest.py): ZeRO-0, fp32, 3 steps
    assert (cfg.distributed.zero_stage, cfg.distributed.precision) == (0, "fp32")
    _assert_finite_grad_norms_and_weights_in(out.result, "fp32")


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_zero1_bf16_trains_with_a_finite_grad_norm(demo_assets: Path, tmp_path: Path) -> None:
    from ray_vlm.train.trainer import train  # here: the spawned ranks below import this module

    result = train(stage_cfg(tmp_path, demo_assets, 1, "bf16"))
    _assert_finite_grad_norms_and_weights_in(result, "bf16")


def _norms(rank: int, world: int, port: int, out: str) -> None:
    """Rank ``rank`` of ``world``: one optimizer step of 2 accumulated micro-batches under ZeRO-0
    (``GradNorm``) and under ZeRO-1 (DeepSpeed's norm) from the same weights; writes both."""
    import deepspeed

    from ray_vlm.train.deepspeed_config import deepspeed_config
    from ray_vlm.train.grad_norm import GradNorm

    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    deepspeed.init_distributed(dist_backend="gloo")
    found = {}
    for stage in (0, 1):
        cfg = load_config(
            FinetuneConfig,
            [
                f"distributed.deepspeed_config={REPO / f'configs/deepspeed/zero{stage}.json'}",
                f"distributed.zero_stage={stage}",
                "batch_size=4",
                "grad_acc_steps=2",
                "optim.clip=0.01",
            ],
        )
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
        engine, *_ = deepspeed.initialize(
            model=model, model_parameters=model.parameters(), config=deepspeed_config(cfg, world)
        )
        norm = GradNorm(engine)
        assert norm.own == (stage == 0)
        data = torch.Generator().manual_seed(rank)
        for _ in range(2):
            loss = engine(torch.randn(4, 8, generator=data)).square().sum()
            engine.backward(loss, scale_wrt_gas=False)
            norm.before_step()
            engine.step()
        found[stage] = norm.value()
    Path(out, f"{rank}.json").write_text(json.dumps(found))


@pytest.mark.slow  # two spawned ranks import torch and DeepSpeed: ~2 min on the loaded 2 cores
def test_zero0_grad_norm_equals_deepspeeds_zero1_norm(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_norms, args=(2, port, str(tmp_path)), nprocs=2)
    for rank in range(2):
        found = json.loads((tmp_path / f"{rank}.json").read_text())
        assert found["0"] > 0.01  # clipping happened after the norm was taken
        assert found["0"] == pytest.approx(found["1"], rel=1e-5)

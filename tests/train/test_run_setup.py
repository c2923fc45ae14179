"""The pieces of a run that need no Ray: DeepSpeed config, lr schedule, data position, layout."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ray_vlm.config import ConfigError, FinetuneConfig, load_config
from ray_vlm.train.deepspeed_config import deepspeed_config
from ray_vlm.train.run_state import TrainState, latest_state
from ray_vlm.train.schedule import warmup_cosine
from tests.conftest import REPO


def _cfg(*overrides: str) -> FinetuneConfig:
    base = f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}"
    return load_config(FinetuneConfig, [base, *overrides])


def test_deepspeed_config_takes_every_value_from_the_run_config() -> None:
    cfg = _cfg("batch_size=4", "grad_acc_steps=3", "optim.lr=2e-4", "optim.clip=0.5")
    ds = deepspeed_config(cfg, world_size=2)
    assert ds["train_micro_batch_size_per_gpu"] == 4
    assert ds["gradient_accumulation_steps"] == 3
    assert ds["train_batch_size"] == 24
    assert ds["gradient_clipping"] == 0.5
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["optimizer"]["type"] == "AdamW"
    assert ds["optimizer"]["params"]["lr"] == 2e-4
    assert ds["optimizer"]["params"]["torch_adam"] is True
    assert ds["optimizer"]["params"]["fused"] is True
    assert not ds["bf16"]["enabled"] and not ds["fp16"]["enabled"]  # auto on CPU: fp32


def test_sgd_as_the_paligemma_guide_updates() -> None:
    ds = deepspeed_config(_cfg("optim.name=sgd", "optim.lr=0.01"), world_size=1)
    assert ds["optimizer"] == {"type": "SGD", "params": {"lr": 0.01, "weight_decay": 0.0}}
    assert ds["zero_allow_untested_optimizer"] is True
    with pytest.raises(ConfigError, match="optim.name"):
        _cfg("optim.name=lion")


def test_deepspeed_config_stage_precision_and_offload() -> None:
    ds = deepspeed_config(
        _cfg("distributed.zero_stage=2", "distributed.precision=bf16",
             "distributed.offload_optimizer=true"),
        world_size=1,
    )  # fmt: skip
    assert ds["zero_optimization"]["stage"] == 2
    assert ds["bf16"]["enabled"]
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert ds["optimizer"]["params"]["torch_adam"] is False  # DeepSpeed's CPU Adam
    assert "fused" not in ds["optimizer"]["params"]
    with pytest.raises(ConfigError, match="offload_params"):
        deepspeed_config(_cfg("distributed.zero_stage=2", "distributed.offload_params=true"), 1)
    with pytest.raises(ConfigError, match="does not exist"):
        deepspeed_config(load_config(FinetuneConfig, ["distributed.deepspeed_config=nope.json"]), 1)


@pytest.mark.parametrize("path", sorted((REPO / "configs/deepspeed").glob("*.json")))
def test_shipped_deepspeed_configs_are_valid_json(path: Path) -> None:
    assert "zero_optimization" in json.loads(path.read_text())


def test_warmup_then_cosine_to_the_floor() -> None:
    optim = _cfg("optim.warmup=4", "optim.lr_min_ratio=0.1").optim
    ratios = [warmup_cosine(optim, 20, s) for s in range(20)]
    assert ratios[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(ratios[3:], ratios[4:], strict=False))
    assert ratios[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert warmup_cosine(optim, 20, 20) == pytest.approx(0.1)
    assert warmup_cosine(_cfg("optim.warmup=0").optim, 10, 0) == 1.0


def test_latest_state_ignores_incomplete_checkpoints(tmp_path: Path) -> None:
    assert latest_state(tmp_path) is None
    for step, ranks in ((4, (0, 1)), (8, (0,))):  # step 8: rank 1 never wrote its part
        folder = tmp_path / "checkpoints" / f"{step:010d}"
        folder.mkdir(parents=True)
        for rank in ranks:
            TrainState(step, step * 8, 2, rank, 0).save(folder)
    assert latest_state(tmp_path) == TrainState(4, 32, 2, 0, 0)


PROCESS_GROUP = """
import torch, torch.distributed as dist
from ray_vlm.train.local_run import _init_process_group
_init_process_group(77)
print(dist.distributed_c10d._get_default_group()._get_backend(torch.device("cpu")).options._timeout)
"""


def test_the_collective_timeout_reaches_both_paths_process_groups() -> None:
    """``distributed.timeout_s``: Ray Train's process group (``TorchConfig``) and the one the
    ``torchrun`` path creates itself."""
    from ray_vlm.train.trainer import _trainer

    assert _trainer(_cfg("distributed.timeout_s=77"), None, None).backend_config.timeout_s == 77
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29571", "RANK": "0"}
    done = subprocess.run(
        [sys.executable, "-c", PROCESS_GROUP], env={**env, "WORLD_SIZE": "1"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1:] == ["0:01:17"], done.stderr[-2000:]
    with pytest.raises(ConfigError, match="distributed.timeout_s"):
        _cfg("distributed.timeout_s=0")

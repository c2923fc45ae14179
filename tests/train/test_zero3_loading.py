"""ZeRO-3 loading on 2 Ray Train workers (CPU, gloo, real DeepSpeed): the model is partitioned while
transformers builds it, no rank holds it whole, and what touches weights works on the partitions.

- every tiny architecture straight after ``load_model(..., zero3_config)``: on both ranks each
  parameter is a placeholder (``numel() == 0``, ``ds_numel`` full) holding half the model, and
  gathered it equals the plain load; trainable modes, ``frozen_dtype`` and LoRA then set up on
  the placeholders, and the trainable-parameter report counts full sizes;
- a run saved by 1 worker with ZeRO-2 resumed by 2 workers with ZeRO-3 (the reshard path:
  consolidated weights loaded into the partitioned model), with frozen weights in bf16 and
  gradient checkpointing: the frozen weights it saves are exactly the first run's, in bf16.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import deepspeed
import pytest
import ray
import ray.train
import torch
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.config.schema import ModelConfig
from ray_vlm.model import load_model
from ray_vlm.train.deepspeed_config import deepspeed_config
from ray_vlm.train.run_state import DS_TAG
from ray_vlm.train.trainable import apply_trainable, trainable_report
from ray_vlm.train.trainer import train
from ray_vlm.train.zero_files import ZeroWeights
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("ray_local")

ARCHS = ("llava", "paligemma", "perception_lm")
WORKERS = 2


def _cfg(*overrides: str) -> FinetuneConfig:
    base = f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}"
    return load_config(FinetuneConfig, [base, "batch_size=2", *overrides])


def _partitions(model: torch.nn.Module) -> dict[str, int]:
    params = list(model.parameters())
    return {
        "numel": sum(p.numel() for p in params),
        "ds_numel": sum(p.ds_numel for p in params),
        "held": sum(p.ds_tensor.numel() for p in params),
    }


def _load_on_every_rank(loop: dict) -> None:
    """Each rank writes ``rank<r>.json``: per architecture, what it holds after loading and after
    ``apply_trainable``; rank 0 also whether the gathered weights equal the plain load."""
    rank = ray.train.get_context().get_world_rank()
    ds_config = deepspeed_config(loop["cfg"], WORKERS)
    rows = {}
    for arch in ARCHS:
        path = str(Path(loop["assets"]) / "models" / arch)
        model = load_model(path, torch.float32, ds_config)
        row = {"loaded": _partitions(model)}
        params = dict(model.named_parameters())
        with deepspeed.zero.GatheredParameters(list(params.values())):
            if rank == 0:
                plain = dict(load_model(path).named_parameters())
                row["equal"] = plain.keys() == params.keys() and all(
                    torch.equal(params[n], plain[n]) for n in plain
                )
        frozen = apply_trainable(model, ModelConfig("attention_only", frozen_dtype="bfloat16"))
        row["held_dtypes"] = sorted(
            {f"{p.requires_grad}:{p.dtype}:{p.ds_tensor.dtype}" for p in frozen.parameters()}
        )
        row["report"] = {part: [t, total] for part, t, total in trainable_report(frozen)}
        lora = apply_trainable(load_model(path, torch.float32, ds_config), ModelConfig("lora"))
        adapters = [p for p in lora.parameters() if p.requires_grad]
        row["lora"] = {
            "adapters": len(adapters),
            "whole": all(not hasattr(p, "ds_id") and p.numel() > 0 for p in adapters),
            "frozen_partitioned": all(
                hasattr(p, "ds_id") for p in lora.parameters() if not p.requires_grad
            ),
        }
        rows[arch] = row
    (Path(loop["out"]) / f"rank{rank}.json").write_text(json.dumps(rows))


@pytest.fixture(scope="module")
def loaded(demo_assets: Path, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("zero3_loading")
    TorchTrainer(
        _load_on_every_rank,
        train_loop_config={"cfg": _cfg(), "assets": str(demo_assets), "out": str(out)},
        scaling_config=ScalingConfig(num_workers=WORKERS),
        run_config=RunConfig(storage_path=str(out), name="ray"),
    ).fit()
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORKERS)]


def _plain_numel(demo_assets: Path, arch: str) -> int:
    return sum(p.numel() for p in load_model(str(demo_assets / "models" / arch)).parameters())


@pytest.mark.parametrize("arch", ARCHS)
def test_no_rank_holds_the_model_after_from_pretrained(loaded, demo_assets, arch) -> None:
    total = _plain_numel(demo_assets, arch)
    for rank in loaded:
        held = rank[arch]["loaded"]
        assert held["numel"] == 0 and held["ds_numel"] == total  # placeholders only
        assert abs(held["held"] - total / WORKERS) <= 0.01 * total, (held, total)
    assert loaded[0][arch]["equal"]  # gathered, the weights rank 0 read and scattered


@pytest.mark.parametrize("arch", ARCHS)
def test_trainable_modes_and_lora_set_up_on_partitions(loaded, demo_assets, arch) -> None:
    plain = apply_trainable(
        load_model(str(demo_assets / "models" / arch)),
        ModelConfig("attention_only", frozen_dtype="bfloat16"),
    )
    expected = {part: [t, total] for part, t, total in trainable_report(plain)}
    for rank in loaded:
        row = rank[arch]
        # trainable weights stay float32; frozen ones are held (placeholder and partition) in bf16
        assert row["held_dtypes"] == [
            "False:torch.bfloat16:torch.bfloat16",
            "True:torch.float32:torch.float32",
        ]
        assert row["report"] == expected
        assert row["lora"] == {"adapters": 2 * 2 * 4, "whole": True, "frozen_partitioned": True}


def _resume_cfg(tmp: Path, assets: Path, *overrides: str) -> FinetuneConfig:
    return _cfg(
        f"dump_dir={tmp / 'run'}",
        f"checkpoint.init_ckpt_path={assets / 'models/llava'}",
        f"data.datasets_yaml={assets / 'datasets.yaml'}",
        "data.datamix=demo_captions:1",
        "data.preprocess_workers=0",  # each rank encodes its records: no actors to start
        "checkpoint.dump.keep=0",
        "optim.lr=1e-2",
        "optim.warmup=0",
        "logging.freq=1",
        *overrides,
    )


@pytest.mark.slow
def test_resume_into_zero3_loads_the_checkpoint_into_partitions(
    demo_assets, tmp_path, no_ray
) -> None:
    """Also two ``train()`` calls in one fresh process, the second bigger: the local cluster the
    first started (1 worker encoding its own records; the machine's 2 CPUs) grows to the second's
    4 (2 workers + 2 preprocessing actors)."""
    first = train(
        _resume_cfg(
            tmp_path,
            demo_assets,
            "steps=2",
            "distributed.num_workers=1",
            "distributed.zero_stage=2",
        )
    )
    second = train(
        _resume_cfg(
            tmp_path,
            demo_assets,
            "steps=3",
            f"distributed.num_workers={WORKERS}",
            "distributed.zero_stage=3",
            "model.trainable=regex",
            "model.trainable_patterns=[multi_modal_projector]",
            "model.frozen_dtype=bfloat16",
            "model.gradient_checkpointing=true",
            "data.preprocess_workers=2",
        )
    )
    assert ray.cluster_resources()["CPU"] == max(os.cpu_count(), 4)
    log = (second.dump_dir / "train.log").read_text()
    assert "saved by 1 workers with ZeRO stage 2, this run has 2 with stage 3" in log
    assert [m["step"] for m in second.metrics] == [1, 2, 3]

    trained = ZeroWeights(first.checkpoint / DS_TAG)
    resumed = ZeroWeights(second.checkpoint / DS_TAG)
    initial = dict(load_model(str(demo_assets / "models/llava")).named_parameters())
    frozen = [n for n in initial if "multi_modal_projector" not in n]
    moved = [n for n in frozen if not torch.equal(trained.read(n), initial[n])]
    assert len(moved) > len(frozen) // 2  # the first run changed them: the copy is informative
    for name in frozen:
        assert torch.equal(resumed.read(name), trained.read(name).to(torch.bfloat16)), name

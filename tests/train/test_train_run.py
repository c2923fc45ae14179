"""End to end on CPU: real Ray Train, real DeepSpeed ZeRO-3 (gloo), the tiny demo LLaVA.

Two runs share one ``dump_dir`` to keep the suite short:

- run A: 2 workers encoding their own records (``preprocess_workers=0``), 8 steps, captions mixed
  with text-only records (so some ranks get micro-batches without images while others have them),
  checkpoints at steps 4 and 8;
- run B: the same command with ``steps=14`` through a preprocessing actor, on 1 worker with ZeRO-2,
  the optimizer offloaded to DeepSpeed's CPU Adam and gradient checkpointing: it resumes from A's
  last checkpoint on another world size and stage (consolidated weights, fresh optimizer), and its
  worker process is killed after the step-10 checkpoint (4 steps, ~4 s, before its end); Ray Train
  replaces it and the run finishes from that checkpoint.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
import ray
import torch
import yaml
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
from safetensors.torch import load_file

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.model import load_model
from ray_vlm.train.host_memory import CPU_WORKER_MALLOC_ENV
from ray_vlm.train.run_state import TrainState, read_state
from ray_vlm.train.trainer import TrainResult, train
from tests.conftest import REPO
from tests.preprocess.helpers import qa, write_plm

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_local")]

B_STEPS = 14

TEXT_ONLY = [("What is 2+2?", "4"), ("Name a colour.", "red"), ("Say hello.", "hello")]


def _registry(tmp: Path, assets: Path) -> Path:
    rows = [qa(q, a, image=None) for q, a in TEXT_ONLY * 6]
    spec = write_plm(tmp / "text_only", rows)
    registry = yaml.safe_load((assets / "datasets.yaml").read_text())
    registry["text_only"] = {"annotation": spec.annotation}
    path = tmp / "datasets.yaml"
    path.write_text(yaml.safe_dump(registry))
    return path


def _cfg(tmp: Path, assets: Path, *overrides: str) -> FinetuneConfig:
    return load_config(
        FinetuneConfig,
        [
            f"dump_dir={tmp / 'run'}",
            f"checkpoint.init_ckpt_path={assets / 'models/llava'}",
            f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
            f"data.datasets_yaml={_registry(tmp, assets)}",
            "data.datamix=demo_captions:3,text_only:1",
            "data.preprocess_workers=0",  # ranks encode their own records (actors: elsewhere)
            "batch_size=4",
            "checkpoint.dump.keep=0",
            "logging.freq=1",
            "optim.lr=1e-3",
            "optim.warmup=2",
            *overrides,
        ],
    )


@pytest.fixture(scope="module")
def run_a(tmp_path_factory, demo_assets: Path) -> TrainResult:
    tmp = tmp_path_factory.mktemp("train")
    # Stream order: the text-only chunk arrives as one block, so one rank gets micro-batches
    # without images while the other has images (the ZeRO-3 hang this must not hit).
    cfg = _cfg(tmp, demo_assets, "steps=8", "checkpoint.dump.every=4", "data.group_by_length=false")
    return train(cfg)


def test_loss_falls(run_a: TrainResult) -> None:
    losses = [m["loss"] for m in run_a.metrics]
    assert [m["step"] for m in run_a.metrics] == list(range(1, 9))
    assert losses[-1] < 0.9 * losses[0], losses


def test_output_layout(run_a: TrainResult) -> None:
    run = run_a.dump_dir
    for name in ("config.yaml", "metrics.jsonl", "train.log", "loss.png"):
        assert (run / name).is_file(), name
    assert set(run_a.metrics[0]) == {
        "step", "loss", "lr", "grad_norm", "samples_per_s", "tokens_per_s"
    }  # fmt: skip
    for step in (4, 8):
        step_dir = run / "checkpoints" / f"{step:010d}"
        assert (step_dir / "latest").read_text().strip() == "ds"
        for rank in (0, 1):
            for kind in ("model", "optim"):
                assert (step_dir / f"ds/zero_pp_rank_{rank}_mp_rank_00_{kind}_states.pt").is_file()
            state = TrainState.load(step_dir / f"train_state_{rank:05d}.json")
            assert (state.step, state.world_size, state.rank) == (step, 2, rank)
            assert state.samples == 2 * 4 * step  # every micro-batch here is full
        assert load_config(FinetuneConfig, [f"config={step_dir / 'config.yaml'}"]).steps == 8
        hf = step_dir / "hf"
        assert {"config.json", "generation_config.json", "processor_config.json"} <= {
            p.name for p in hf.iterdir()
        }
    assert run_a.checkpoint == run / "checkpoints" / f"{8:010d}"
    assert "2 workers, ZeRO stage 3" in (run / "train.log").read_text()


def test_each_rank_holds_half_the_parameters_and_optimizer_state(
    run_a: TrainResult, demo_assets: Path
) -> None:
    total = sum(
        t.numel() for t in load_file(demo_assets / "models/llava/model.safetensors").values()
    )
    for rank in (0, 1):
        path = run_a.checkpoint / f"ds/zero_pp_rank_{rank}_mp_rank_00_optim_states.pt"
        optim = torch.load(path, map_location="cpu", weights_only=False)["optimizer_state_dict"]
        master = sum(t.numel() for t in optim["fp32_flat_groups"])
        moments = optim["optimizer_state_dict"]["state"][0]
        assert abs(master - total / 2) <= 0.01 * total, (master, total)
        assert moments["exp_avg"].numel() == moments["exp_avg_sq"].numel() == master


def test_saved_weights_are_whole_and_trained(run_a: TrainResult, demo_assets: Path) -> None:
    initial = load_model(str(demo_assets / "models/llava")).state_dict()
    trained = get_fp32_state_dict_from_zero_checkpoint(str(run_a.checkpoint), tag="ds")
    assert trained.keys() == initial.keys()
    for name, tensor in trained.items():
        assert tensor.shape == initial[name].shape and torch.isfinite(tensor).all(), name
    changed = [n for n in trained if not torch.equal(trained[n], initial[n])]
    assert len(changed) > len(trained) // 2


def test_rerun_of_a_finished_run_does_not_train_again(run_a: TrainResult) -> None:
    started = time.perf_counter()
    again = train(load_config(FinetuneConfig, [f"config={run_a.dump_dir / 'config.yaml'}"]))
    assert again.step == 8 and again.checkpoint == run_a.checkpoint
    assert again.metrics == run_a.metrics
    assert time.perf_counter() - started < 30


def _raylet_children() -> list[psutil.Process]:
    node = ray._private.worker._global_node  # the local cluster this test process started
    raylet = node.all_processes["raylet"][0].process.pid
    return psutil.Process(raylet).children(recursive=True)


def _kill_worker_after(step_dir: Path, killed: list[dict[str, str]]) -> None:
    """Once ``step_dir`` is a complete checkpoint, SIGKILL the (only) training worker; ``killed``
    gets the environment of each process killed."""
    deadline = time.time() + 900
    while time.time() < deadline and read_state(step_dir) is None:
        time.sleep(0.2)
    for proc in _raylet_children():
        if "RayTrainWorker" in " ".join(proc.cmdline()):
            env = proc.environ()
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(env)


@pytest.fixture(scope="module")
def run_b(run_a: TrainResult) -> tuple[TrainResult, list[int]]:
    cfg = load_config(
        FinetuneConfig,
        [
            f"config={run_a.dump_dir / 'config.yaml'}",
            f"steps={B_STEPS}",
            "data.preprocess_workers=1",  # resumed through preprocessing actors
            "checkpoint.dump.every=2",
            "distributed.num_workers=1",
            "distributed.zero_stage=2",
            "distributed.offload_optimizer=true",
            "model.gradient_checkpointing=true",
        ],
    )
    with open((run_a.dump_dir / "metrics.jsonl").local_path, "a") as f:  # a crash mid-append
        f.write('{"step": 9, "lo')
    killed: list[dict[str, str]] = []
    killer = threading.Thread(
        target=_kill_worker_after, args=(run_a.dump_dir / "checkpoints" / f"{10:010d}", killed)
    )
    killer.start()
    result = train(cfg)
    killer.join()
    return result, killed


def test_resume_on_another_world_size_and_after_a_killed_worker(run_b) -> None:
    result, killed = run_b
    assert killed, "no training worker was found to kill"
    for key, value in CPU_WORKER_MALLOC_ENV.items():  # ZeRO-3's allocator settings reached it
        assert killed[0].get(key) == value, key
    assert result.step == B_STEPS
    log = (result.dump_dir / "train.log").read_text()
    assert "saved by 2 workers with ZeRO stage 3, this run has 1 with stage 2" in log
    assert "1 workers, ZeRO stage 2, optimizer offloaded to CPU, gradient checkpointing" in log
    resumed = [int(n) for n in re.findall(r"resumed from step (\d+)", log)]
    assert resumed[0] == 8 and len(resumed) == 2 and 8 <= resumed[1] < B_STEPS, resumed
    # logged once each; the line cut off before the resume dropped
    assert [m["step"] for m in result.metrics] == list(range(1, B_STEPS + 1))
    final = TrainState.load(result.checkpoint / "train_state_00000.json")
    assert (final.step, final.world_size) == (B_STEPS, 1)
    assert final.samples == 2 * 4 * 8 + 4 * (B_STEPS - 8)
    # ZeRO-2 + CPU Adam shards (resumed after the kill) consolidate like ZeRO-3 ones
    trained = get_fp32_state_dict_from_zero_checkpoint(str(result.checkpoint), tag="ds")
    assert all(torch.isfinite(t).all() for t in trained.values())

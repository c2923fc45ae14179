"""ZeRO-3 checkpoints of real 2-worker runs -> Hugging Face directories that plain transformers
loads (checked in a fresh process without ray_vlm) and that compute the trained engine's logits;
sharded, in another dtype, and with two processes consolidating one checkpoint at once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
from safetensors.torch import load_file
from transformers import AutoConfig

from ray_vlm.cli import main
from ray_vlm.config import CONFIG_FILE, FinetuneConfig, load_config, save_config
from ray_vlm.config.schema import ExportConfig
from ray_vlm.export import ExportError, consolidate
from ray_vlm.export.layout import CONSOLIDATED_DIR
from ray_vlm.train.run_state import DS_TAG
from ray_vlm.train.zero_files import ZeroWeights, _load
from tests.conftest import REPO
from tests.export.checkpoints import ENGINE_LOGITS
from tests.export.runs import RUNS, probe_batch

pytestmark = pytest.mark.slow

# Loads each exported dir with nothing but transformers and writes its logits on the probe batch.
FRESH_PROCESS = """
import json, sys, torch
from transformers import AutoModelForImageTextToText, AutoProcessor
for out, batch, result in json.loads(sys.argv[1]):
    AutoProcessor.from_pretrained(out)
    model = AutoModelForImageTextToText.from_pretrained(out).eval()
    with torch.no_grad():
        torch.save(model(**torch.load(batch)).logits, result)
assert not any(m.startswith("ray_vlm") for m in sys.modules), "ray_vlm was imported"
"""


def _logits_in_fresh_process(exports: dict[str, Path], demo_assets: Path, tmp: Path) -> dict:
    """Run name -> logits of its export on the run's probe batch, computed without ray_vlm."""
    jobs = []
    for name, out in exports.items():
        torch.save(probe_batch(demo_assets, RUNS[name].arch), tmp / f"{name}_batch.pt")
        jobs.append((str(out), str(tmp / f"{name}_batch.pt"), str(tmp / f"{name}_logits.pt")))
    subprocess.run([sys.executable, "-c", FRESH_PROCESS, json.dumps(jobs)], check=True, cwd=tmp)
    return {name: torch.load(tmp / f"{name}_logits.pt") for name in exports}


@pytest.fixture(scope="module")
def fresh_logits(checkpoints, demo_assets, tmp_path_factory) -> dict[str, torch.Tensor]:
    """Run name -> logits of its consolidated model (default ``out``) in a fresh process."""
    exports = {name: consolidate(checkpoints[name]) for name in RUNS}
    return _logits_in_fresh_process(exports, demo_assets, tmp_path_factory.mktemp("fresh"))


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("name", list(RUNS))
def test_consolidated_model_computes_the_engine_logits(checkpoints, fresh_logits, name) -> None:
    engine = torch.load(checkpoints[name] / ENGINE_LOGITS)
    # Frozen weights held in bf16 compute in fp32 in the engine, as the export's do; only the
    # pixels differ, which SigLIP casts to its patch embedding's dtype (bf16 there) first.
    atol = 1e-3 if RUNS[name].frozen_dtype == "bfloat16" else 1e-5
    torch.testing.assert_close(fresh_logits[name], engine, rtol=0, atol=atol)


@pytest.mark.parametrize("name", list(RUNS))
def test_zero_weights_read_what_deepspeed_consolidates(checkpoints, name) -> None:
    """The streaming reader against DeepSpeed's own (ZeRO 0 / 2 / 3, LoRA, frozen bf16)."""
    step = checkpoints[name]
    if RUNS[name].zero_stage == 0:
        ds = torch.load(step / DS_TAG / "mp_rank_00_model_states.pt", weights_only=False)
        expected = ds["module"]
    else:
        expected = get_fp32_state_dict_from_zero_checkpoint(str(step), tag=DS_TAG)
    weights = ZeroWeights(step / DS_TAG)
    assert sorted(weights.names()) == sorted(expected)
    for key, tensor in expected.items():
        got = weights.read(key)  # DeepSpeed returns buffers in float32
        assert got.shape == tensor.shape and torch.equal(got, tensor.to(got.dtype)), key


TRAINED = {
    "perception_lm_freeze_vision": lambda key: "vision_tower" not in key,
    "paligemma_attention_bf16": lambda key: "language_model" in key and "self_attn" in key,
}
"""Run name -> which exported weights trained; the others must equal the initial ones.
(Keys as ``save_pretrained`` writes them, e.g. ``language_model.model.layers.0.self_attn...``.)"""


@pytest.mark.parametrize("name", list(TRAINED))
def test_frozen_weights_are_bit_identical_and_trained_ones_moved(
    checkpoints, fresh_logits, demo_assets, name
) -> None:
    run = RUNS[name]
    init = _weights(demo_assets / "models" / run.arch)
    out = _weights(checkpoints[name] / CONSOLIDATED_DIR)
    assert out.keys() == init.keys()
    for key, tensor in out.items():
        held = (
            init[key].to(getattr(torch, run.frozen_dtype)).float()
        )  # as training held it if frozen
        assert torch.equal(tensor, held) != TRAINED[name](key), key


def test_lora_is_merged_into_its_target_weights(checkpoints, fresh_logits, demo_assets) -> None:
    init = _weights(demo_assets / "models" / "llava")
    out = _weights(checkpoints["llava_lora"] / CONSOLIDATED_DIR)
    assert out.keys() == init.keys()  # no lora_A/lora_B left
    changed = {k for k in out if not torch.equal(out[k], init[k])}
    layers = 2  # tiny_models.TEXT["num_hidden_layers"]
    assert len(changed) == layers * 4
    assert all("language_model" in k and "self_attn" in k for k in changed)


def _copy(step_dir: Path, dest: Path) -> Path:
    return Path(shutil.copytree(step_dir, dest, ignore=shutil.ignore_patterns(CONSOLIDATED_DIR)))


def test_zeroed_shards_are_refused(checkpoints, tmp_path) -> None:
    step = _copy(checkpoints["llava_full"], tmp_path / "step")
    for path in (step / DS_TAG).glob("*_optim_states.pt"):
        state = torch.load(path, weights_only=False)
        groups = state["optimizer_state_dict"]["fp32_flat_groups"]
        groups[:] = [torch.zeros_like(flat) for flat in groups]
        torch.save(state, path)
    with pytest.raises(ExportError, match="empty or all zero"):
        consolidate(step)
    assert not (step / CONSOLIDATED_DIR).exists()


class _RunsCode:
    """Pickles as a call of ``os.system``: what a hostile checkpoint file would hold."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_an_fp16_runs_dynamic_loss_scaler_loads(tmp_path) -> None:
    """fp16 runs (no static loss scale) keep DeepSpeed's ``DynamicLossScaler`` in their files."""
    from deepspeed.runtime.fp16.loss_scaler import CreateLossScaler

    defaults = {"init_scale": 2**16, "scale_window": 1000, "min_scale": 1, "delayed_shift": 2}
    scaler = CreateLossScaler(torch.half, 0, True, {**defaults, "consecutive_hysteresis": False})
    torch.save({"optimizer_state_dict": {"loss_scaler": scaler}}, tmp_path / "optim_states.pt")
    loaded = _load(tmp_path / "optim_states.pt")["optimizer_state_dict"]["loss_scaler"]
    assert type(loaded).__name__ == "DynamicLossScaler" and loaded.cur_scale == scaler.cur_scale


def test_a_checkpoint_file_that_would_run_code_is_refused(checkpoints, tmp_path, capsys) -> None:
    """The real files load with ``weights_only=True`` (the other tests here); one rank's model
    states swapped for a pickle calling ``os.system`` is refused, in one line, never run."""
    step = _copy(checkpoints["llava_zero0"], tmp_path / "step")
    marker = tmp_path / "code_ran"
    target = step / DS_TAG / "mp_rank_00_model_states.pt"
    state = torch.load(target, weights_only=False)
    torch.save({**state, "args": _RunsCode(f"touch {marker}")}, target)
    assert main(["consolidate", "--ckpt", str(step)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refused to load" in err and "system" in err, err
    assert not marker.exists() and not (step / CONSOLIDATED_DIR).exists()


def test_a_config_that_does_not_match_the_shards_is_refused(checkpoints, tmp_path) -> None:
    step = _copy(checkpoints["llava_full"], tmp_path / "step")
    config = step / CONFIG_FILE
    config.write_text(config.read_text().replace("trainable: full", "trainable: lora"))
    with pytest.raises(ExportError, match="missing weights"):
        consolidate(step)


def test_consolidate_cli_writes_to_out(checkpoints, tmp_path, capsys) -> None:
    out = tmp_path / "export"
    assert (
        main(["consolidate", "--ckpt", str(checkpoints["paligemma_full"]), "--out", str(out)]) == 0
    )
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert main(["consolidate", "--ckpt", str(tmp_path)]) == 2
    assert "not a complete checkpoint step dir" in capsys.readouterr().err


CONSOLIDATE = "import sys; from ray_vlm.export import consolidate; consolidate(*sys.argv[1:])"


def test_concurrent_consolidations_leave_one_complete_sharded_export(
    checkpoints, demo_assets, tmp_path
) -> None:
    step = _copy(checkpoints["llava_lora"], tmp_path / "step")
    settings = ["export.dtype=bfloat16", "export.max_shard_size=300KB"]
    save_config(
        load_config(FinetuneConfig, [f"config={step / CONFIG_FILE}", *settings]), step / CONFIG_FILE
    )
    out = tmp_path / "export"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [
        subprocess.Popen([sys.executable, "-c", CONSOLIDATE, str(step), str(out)], env=env)
        for _ in range(2)
    ]
    assert [w.wait(timeout=600) for w in writers] == [0, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "step"]  # no staging left

    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and sorted(p.name for p in out.glob("*.safetensors")) == shards
    weights = {k: t for shard in shards for k, t in load_file(out / shard).items()}
    assert weights.keys() == _weights(demo_assets / "models" / "llava").keys()
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    logits = _logits_in_fresh_process({"llava_lora": out}, demo_assets, fresh)["llava_lora"]
    engine = torch.load(checkpoints["llava_lora"] / ENGINE_LOGITS)
    assert logits.dtype == torch.bfloat16  # config.json names the export dtype
    torch.testing.assert_close(
        logits.float(), engine, rtol=0, atol=2e-2 * float(engine.abs().max())
    )

    kept = (out / "config.json").stat().st_ino
    consolidate(step, out, ExportConfig(), replace=False)  # what a Serve replica does: keep it
    assert (out / "config.json").stat().st_ino == kept and len(list(out.glob("*.safetensors"))) > 1
    consolidate(step, out, ExportConfig())  # the default: replace it (fp32, one file)
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "fresh", "step"]


def test_the_attention_kernel_a_run_named_travels_with_its_export(
    checkpoints, fresh_logits
) -> None:
    """``model.attn_implementation=eager`` trained is what plain ``from_pretrained`` loads; a run
    left on ``auto`` leaves the choice to transformers."""
    eager = AutoConfig.from_pretrained(checkpoints["llava_zero0"] / CONSOLIDATED_DIR)
    assert eager._attn_implementation == "eager"
    auto = AutoConfig.from_pretrained(checkpoints["llava_full"] / CONSOLIDATED_DIR)
    assert auto._attn_implementation is None

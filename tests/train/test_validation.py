"""Validation during training (``eval``): the driver's checks, the log, and a real run.

The run: real Ray Train, 2 workers, DeepSpeed ZeRO-3 (gloo), the tiny demo LLaVA, 4 steps with
validation every 2 on 5 held-out records (3 with images, 2 text-only: one rank gets a batch more
than the other, which runs the dummy example to match it; its one batch has no image and gets the
dummy appended). Its ``val_loss`` at steps 2 and 4 equals the same loss computed in one process,
record by record, with the weights of the checkpoint of that step; no validation record is trained
on, and the training losses are those of the same run without validation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from ray_vlm.config import ConfigError, FinetuneConfig, load_config
from ray_vlm.preflight import check_finetune
from ray_vlm.train.metrics import METRICS, TRAIN_LOG, RunLog, plot_loss, read_metrics
from tests.conftest import REPO
from tests.preprocess.helpers import qa, write_plm


def _registry(tmp: Path) -> Path:
    """Three sources: ``train``, ``heldout`` and ``same_file`` (``train``'s file again)."""
    train = write_plm(tmp / "train", [qa("Describe.", "a red square")], {"a.png": None})
    heldout = write_plm(tmp / "heldout", [qa("Describe.", "a blue circle")], {"a.png": None})
    registry = {
        "train": {"annotation": train.annotation},
        "heldout": {"annotation": heldout.annotation},
        "same_file": {"annotation": train.annotation},
    }
    path = tmp / "datasets.yaml"
    path.write_text(yaml.safe_dump(registry))
    return path


def _checked(tmp: Path, *overrides: str):
    cfg = load_config(
        FinetuneConfig,
        [
            f"dump_dir={tmp / 'run'}",
            f"checkpoint.init_ckpt_path={tmp}",
            f"data.datasets_yaml={_registry(tmp)}",
            "data.datamix=train:1",
            *overrides,
        ],
    )
    return check_finetune(cfg)


def test_validation_sources_are_resolved_on_the_driver(tmp_path: Path) -> None:
    train, validation = _checked(tmp_path, "eval.datamix=heldout:1")
    assert [s.name for _, s in train] == ["train"]
    assert [s.name for _, s in validation] == ["heldout"]
    assert _checked(tmp_path)[1] == []  # eval.datamix empty: no validation


def test_an_unknown_validation_dataset_fails_fast_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"eval\.datamix.*'nope'") as err:
        _checked(tmp_path, "eval.datamix=nope:1")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("datamix", ["train:1", "heldout:1,same_file:1"])
def test_validation_on_a_file_the_run_trains_on_is_refused(tmp_path: Path, datamix: str) -> None:
    with pytest.raises(
        ConfigError, match=r"^key 'eval\.datamix': .*data\.datamix trains on"
    ) as err:
        _checked(tmp_path, f"eval.datamix={datamix}")
    assert "\n" not in str(err.value)


def test_validation_rows_reach_the_log_and_the_plot(tmp_path: Path) -> None:
    log = RunLog(tmp_path, 0)
    train_row = {"step": 2, "loss": 1.5, "lr": 1e-3, "grad_norm": 1.0}
    log.metrics({**train_row, "samples_per_s": 1.0, "tokens_per_s": 9.0}, steps=4)
    val_row = {"step": 2, "val_loss": 1.25, "val_examples": 5, "val_tokens": 20}
    log.validation(2, val_row, steps=4)
    log.validation(4, None, steps=4)
    assert read_metrics(tmp_path)[-1] == val_row
    text = (tmp_path / TRAIN_LOG).read_text()
    assert "validation at step 2/4: val_loss 1.2500 over 5 examples (20 answer tokens)" in text
    assert "validation at step 4/4: no answer tokens" in text
    assert plot_loss(tmp_path).is_file()
    RunLog(tmp_path, 1)  # a resume from step 1 drops the rows of later steps
    assert (tmp_path / METRICS).read_text() == ""


# --- a real run -----------------------------------------------------------------------------

STEPS, EVERY = 4, 2


def _heldout(tmp: Path, assets: Path) -> Path:
    """A registry: the demo's, plus ``heldout``: 3 demo VQA test records with 2 text-only ones
    between them (rank 0 gets the 3: two batches; rank 1 the 2: one batch without images)."""
    vqa = (assets / "data/plm/shapes/vqa_test.jsonl").read_text().splitlines()
    text = [json.dumps(qa(q, a, image=None)) for q, a in [("What is 2+2?", "4"), ("Hi?", "hello")]]
    lines = [vqa[0], text[0], vqa[1], text[1], vqa[2]]
    (tmp / "heldout.jsonl").write_text("\n".join(lines) + "\n")
    registry = yaml.safe_load((assets / "datasets.yaml").read_text())
    registry["heldout"] = {
        "annotation": str(tmp / "heldout.jsonl"),
        "root_dir": str(assets / "data/plm/shapes/images"),
    }
    path = tmp / "datasets.yaml"
    path.write_text(yaml.safe_dump(registry))
    return path


def _run_cfg(tmp: Path, assets: Path, *overrides: str) -> FinetuneConfig:
    return load_config(
        FinetuneConfig,
        [
            f"dump_dir={tmp / 'run'}",
            f"checkpoint.init_ckpt_path={assets / 'models/llava'}",
            f"distributed.deepspeed_config={REPO / 'configs/deepspeed/zero3.json'}",
            f"data.datasets_yaml={_heldout(tmp, assets)}",
            "data.datamix=demo_captions:1",
            "data.preprocess_workers=0",  # ranks encode their own records (actors: elsewhere)
            "eval.datamix=heldout:1",
            f"eval.every={EVERY}",
            "batch_size=2", f"steps={STEPS}", "optim.lr=1e-3", "optim.warmup=1",
            f"checkpoint.dump.every={EVERY}", "checkpoint.dump.keep=0",
            "logging.freq=1", "logging.record_ids=true", "logging.tensorboard=true",
            *overrides,
        ],
    )  # fmt: skip


@pytest.fixture(scope="module")
def validated(demo_assets: Path, tmp_path_factory):
    from ray_vlm.train.trainer import train

    cfg = _run_cfg(tmp_path_factory.mktemp("validation"), demo_assets)
    return cfg, train(cfg)


def _reference_loss(cfg: FinetuneConfig, step_dir: Path) -> tuple[float, int]:
    """``(loss, answer tokens)`` of the held-out records in one process, one record a batch,
    with the weights of the checkpoint ``step_dir``."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    from ray_vlm.model import load_model, load_processor
    from ray_vlm.preprocess.batching import collate, dummy_image_example
    from ray_vlm.preprocess.encode import Encoder
    from ray_vlm.records import Record, read_records, select_datamix
    from ray_vlm.train.loss import answer_tokens, summed_token_loss

    base = cfg.checkpoint.init_ckpt_path
    processor = load_processor(base)
    model = load_model(base)
    model.load_state_dict(get_fp32_state_dict_from_zero_checkpoint(str(step_dir), tag="ds"))
    model.eval()
    encoder = Encoder(processor, cfg.data.max_seq_len)
    dummy = dummy_image_example(encoder)
    [(_, spec)] = select_datamix(cfg.eval.datamix, cfg.data.datasets_yaml)
    total, tokens = 0.0, 0
    for record in read_records(spec):
        assert isinstance(record, Record)
        row = encoder.encode(record).row(record)
        examples = [row] if row["num_images"] else [row, dummy]
        inputs = collate(examples, encoder)
        labels = inputs.pop("labels")
        with torch.no_grad():
            total += float(summed_token_loss(model(**inputs).logits, labels))
        tokens += answer_tokens(labels)
    return total / tokens, tokens


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_validation_loss_at_its_steps_equals_a_single_process_computation(validated) -> None:
    cfg, result = validated
    rows = read_metrics(result.dump_dir)
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, STEPS + 1))
    val = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in val] == [EVERY, STEPS]
    for row in val:
        assert set(row) == {"step", "val_loss", "val_examples", "val_tokens"}
        assert math.isfinite(row["val_loss"]) and row["val_examples"] == 5
        step_dir = Path(result.dump_dir.uri) / "checkpoints" / f"{row['step']:010d}"
        loss, tokens = _reference_loss(cfg, step_dir)
        assert row["val_tokens"] == tokens
        assert row["val_loss"] == pytest.approx(loss, rel=1e-4)
    assert val[0]["val_loss"] != val[1]["val_loss"]  # the weights moved between them
    log = (Path(result.dump_dir.uri) / TRAIN_LOG).read_text()
    assert f"validation at step {EVERY}/{STEPS}: val_loss" in log


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_validation_records_are_never_trained_on_and_reach_the_trackers(validated) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ray_vlm.train.record_ids import step_ids

    _, result = validated
    steps = step_ids(result.dump_dir).values()
    trained = {i for ranks in steps for rank in ranks for micro in rank for i in micro}
    assert trained and not any("heldout.jsonl" in i for i in trained)
    events = EventAccumulator(str(Path(result.dump_dir.uri) / "tensorboard"))
    events.Reload()
    assert [s.step for s in events.Scalars("val_loss")] == [EVERY, STEPS]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_validation_leaves_training_unchanged(validated, demo_assets: Path, tmp_path: Path) -> None:
    from ray_vlm.train.trainer import train

    _, result = validated
    plain = train(_run_cfg(tmp_path, demo_assets, "eval.datamix=''", "checkpoint.dump.every=0"))
    assert [r for r in plain.metrics if "val_loss" in r] == []
    trained = [r for r in result.metrics if "loss" in r]
    assert [r["step"] for r in plain.metrics] == [r["step"] for r in trained]
    assert [r["loss"] for r in plain.metrics] == pytest.approx(
        [r["loss"] for r in trained], rel=1e-6
    )

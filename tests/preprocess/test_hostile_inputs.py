"""Annotation files with ordinary defects (``tests/records/hostile.py``) through the pipeline, the
way the PaliGemma guide's user runs it: the shipped ``paligemma_prescription.yaml`` (CPU
overrides, the PaliGemma-2 stand-in) from the data folder, the registry's paths relative to it.
``check-data --json`` reports every defective record with its ``file:line`` and counts every other
one valid, with no traceback; ``train`` on the same datamix completes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ray_vlm.cli import main
from ray_vlm.preprocess.chunk_records import chunk_records
from ray_vlm.preprocess.stream_plan import plan_each_once
from ray_vlm.records import select_datamix
from tests.conftest import REPO
from tests.records.hostile import (
    CSV_BAD,
    CSV_GOOD,
    MAX_PIXELS,
    PLM_BAD,
    PLM_BAD_IMAGES,
    PLM_GOOD,
    write_corpus,
)

pytestmark = pytest.mark.usefixtures("ray_local")

DATAMIX = "hostile_plm:1,prescription_train:1"
CONFIG = str(REPO / "configs/finetune/paligemma_prescription.yaml")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The data folder (``datasets.yaml`` in it); the tests run from it."""
    return write_corpus(tmp_path_factory.mktemp("hostile")).parent


def _overrides(demo_assets: Path) -> list[str]:
    """The shipped config on this machine's CPUs, on the stand-in and the corpus."""
    return [
        "data.datasets_yaml=datasets.yaml",
        f"data.datamix={DATAMIX}",
        f"data.max_image_pixels={MAX_PIXELS}",
        f"checkpoint.init_ckpt_path={demo_assets / 'models/paligemma2_224_standin'}",
        "distributed.use_gpu=false",
        "distributed.cpus_per_worker=1",
        "model.frozen_dtype=float32",
    ]


def test_the_chunk_reader_splits_lines_as_the_index_counts_them(corpus: Path) -> None:
    plan = plan_each_once(select_datamix(DATAMIX, str(corpus / "datasets.yaml")))
    good, bad = [], []
    for chunk in plan:
        records, items = chunk_records(chunk)
        good += [int(r.source.rsplit(":", 1)[1]) for r in records]
        bad += [int(i["source"].rsplit(":", 1)[1]) for i in items]
    assert good == sorted([*PLM_GOOD, *PLM_BAD_IMAGES]) + CSV_GOOD
    assert bad == sorted(PLM_BAD) + sorted(CSV_BAD)


def test_check_data_reports_each_defect_at_its_line(
    corpus, demo_assets, capfd, monkeypatch
) -> None:
    monkeypatch.chdir(corpus)
    code = main(["check-data", "--config", CONFIG, "--json", *_overrides(demo_assets)])
    out, err = capfd.readouterr()
    assert code == 1 and "Traceback" not in out + err, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["sources"]["hostile_plm"]["valid"] == len(PLM_GOOD)
    assert report["sources"]["prescription_train"]["valid"] == len(CSV_GOOD)
    assert report["sources"]["hostile_plm"]["image_errors"] == len(PLM_BAD_IMAGES)
    found = {(e["dataset"], int(e["source"].rsplit(":", 1)[1])): e for e in report["errors"]}
    want = {("hostile_plm", n): r for n, r in {**PLM_BAD, **PLM_BAD_IMAGES}.items()}
    want |= {("prescription_train", n): r for n, r in CSV_BAD.items()}
    assert sorted(found) == sorted(want)
    for key, words in want.items():
        assert words in found[key]["reason"], found[key]


def test_the_shipped_paligemma_config_trains_on_it_from_the_data_folder(
    corpus, demo_assets, capfd, monkeypatch
) -> None:
    """Its ``deepspeed_config: configs/deepspeed/zero0.json`` is found in the ray_vlm checkout,
    the registry's relative paths beside it; each rank encodes its own records
    (``preprocess_workers=0``: the path without Ray Data; check-data took the Ray Data one)."""
    monkeypatch.chdir(corpus)
    overrides = ["steps=2", "batch_size=2", "logging.freq=1", "data.preprocess_workers=0"]
    code = main(["train", "--config", CONFIG, *_overrides(demo_assets), *overrides])
    out, err = capfd.readouterr()
    assert code == 0, err[-3000:]
    assert f"step 2: checkpoint {corpus}/checkpoints/runs/paligemma_prescription/" in out
    assert "left out of prescription_train" in out

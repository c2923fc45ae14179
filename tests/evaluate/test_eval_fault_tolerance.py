"""A generation replica killed in the middle of an evaluation: every record is answered or
counted failed (the batch the dead replica held is sent again), and the counts add up."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import ray
import yaml

from ray_vlm.config import load_config
from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.evaluate.run import EvalResult, evaluate
from ray_vlm.serve.handle import GENERATOR_DEPLOYMENT

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_local")]
APP, RECORDS = "eval_fault", 400


def _split(demo_assets: Path, folder: Path) -> Path:
    """A VQA split of ``RECORDS`` distinct questions over the demo's test images."""
    lines = (demo_assets / "data/plm/shapes/vqa_test.jsonl").read_text().splitlines()
    records = []
    for i in range(RECORDS):
        record = json.loads(lines[i % len(lines)])
        record["conversations"][0]["value"] += f" ({i})"  # one sample each, not one per image
        records.append(json.dumps(record))
    (folder / "vqa.jsonl").write_text("\n".join(records) + "\n")
    root = str(demo_assets / "data/plm/shapes/images")
    registry = folder / "datasets.yaml"
    registry.write_text(yaml.safe_dump({"big_vqa": {"annotation": str(folder / "vqa.jsonl"),
                                                    "root_dir": root}}))  # fmt: skip
    return registry


def _logs() -> Path:
    return Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"


def _replica_logs() -> list[Path]:
    return sorted((_logs() / "serve").glob(f"replica_{APP}_{GENERATOR_DEPLOYMENT}_*.log"))


def _batches_sent_again() -> int:
    """Batches the dispatcher sent again after their replica died (its warnings)."""
    return sum(p.read_text().count("re-sending the request") for p in _logs().glob("worker-*.err"))


def _batches_done() -> list[int]:
    """Batches each replica has answered so far (its log lines)."""
    return [p.read_text().count(" records in ") for p in _replica_logs()]


def _replicas() -> list[str]:
    prefix = f"SERVE_REPLICA::{APP}#{GENERATOR_DEPLOYMENT}#"
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    return [n for n in names if n.startswith(prefix)]


def test_a_replica_killed_mid_evaluation_loses_no_record(demo_assets: Path, tmp_path: Path) -> None:
    cfg = load_config(
        EvalConfig,
        [f"ckpt={demo_assets / 'models' / 'llava'}", "data=big_vqa", "task=vqa",
         f"datasets_yaml={_split(demo_assets, tmp_path)}", f"out_dir={tmp_path / 'eval'}",
         "max_new_tokens=16", "batch_size=4", f"serve.app_name={APP}",
         "serve.replicas.min_replicas=2", "serve.replicas.max_replicas=2",
         "serve.replicas.num_cpus=0.5"],
    )  # fmt: skip
    results: list[EvalResult] = []
    run = threading.Thread(target=lambda: results.append(evaluate(cfg)))
    run.start()
    deadline = time.time() + 240  # until both replicas have answered two batches
    while len(_replicas()) < 2 or len(_batches_done()) < 2 or min(_batches_done()) < 2:
        assert run.is_alive() and time.time() < deadline, "the evaluation never got going"
        time.sleep(0.05)
    sent_again = _batches_sent_again()
    ray.kill(ray.get_actor(_replicas()[0], namespace="serve"), no_restart=True)
    done_at_kill = sum(_batches_done())
    assert run.is_alive() and done_at_kill < RECORDS // 4, "killed too late to matter"
    run.join(timeout=300)
    assert results, "the evaluation did not finish"

    metrics = results[0].metrics["model"]
    rows = [
        json.loads(x)
        for x in (results[0].out_dir / "predictions.jsonl").read_text().split("\n")
        if x
    ]
    errors = [r["model"]["error"] for r in rows if r["model"]["error"]]
    assert len(rows) == len({r["id"] for r in rows}) == RECORDS
    assert metrics["samples"] == RECORDS and metrics["failed"] == len(errors)
    assert not errors, errors[:3]  # the other replica answered whatever the dead one held
    print(
        f"\nreplica killed after {done_at_kill} of {RECORDS // 4} batches: {RECORDS} answered, "
        f"{_batches_sent_again() - sent_again} batches sent again"
    )

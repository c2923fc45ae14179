"""Tracking: a short fine-tune + export with TensorBoard and a local MLflow store on (the session's
``zero0_tracked`` run, ``tests/train/conftest.py``), read back with TensorBoard's own
``EventAccumulator`` and ``mlflow.tracking.MlflowClient``; the helpers alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ray_vlm.config import FinetuneConfig, UserError
from ray_vlm.config.schema import LoggingConfig
from ray_vlm.train.tracking import (
    EXPORT_TAG,
    check_tracking,
    flat_params,
    resolved_tracking_uri,
)

KEYS = ("loss", "lr", "grad_norm", "samples_per_s", "tokens_per_s")


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_tensorboard_events_hold_every_metric_per_step(zero0_tracked) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, out = zero0_tracked
    events = EventAccumulator(str(Path(out.result.dump_dir.uri) / "tensorboard"))
    events.Reload()
    assert set(KEYS) <= set(events.Tags()["scalars"])
    for key in KEYS:
        scalars = events.Scalars(key)
        assert [s.step for s in scalars] == [m["step"] for m in out.result.metrics] == [1, 2, 3]
        assert [s.value for s in scalars] == pytest.approx(
            [m[key] for m in out.result.metrics], rel=1e-6
        )


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_mlflow_run_holds_params_metrics_and_export(zero0_tracked, monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    cfg, out = zero0_tracked
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(cfg.logging.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name("tracking_test")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == cfg.name
    params = run.data.params
    assert params["steps"] == "3"
    assert params["distributed.zero_stage"] == "0"
    assert params["optim.lr"] == str(cfg.optim.lr)
    assert json.loads(params["model.lora.target_modules"]) == cfg.model.lora.target_modules
    assert params["logging.tensorboard"] == "True"
    for key in KEYS:
        history = client.get_metric_history(run.info.run_id, key)
        assert [(m.step, m.value) for m in history] == [
            (row["step"], pytest.approx(row[key])) for row in out.result.metrics
        ]
    assert run.data.tags[EXPORT_TAG] == out.hf_dir.uri


def test_a_missing_package_is_a_one_line_user_error(monkeypatch) -> None:
    check_tracking(LoggingConfig())  # off: imports nothing
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(UserError, match=r"^logging.mlflow_tracking_uri .*pip install 'ray-vlm\["):
        check_tracking(LoggingConfig(mlflow_tracking_uri="file:///tmp/mlruns"))
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(UserError, match=r"^logging.tensorboard needs the 'tensorboard' package"):
        check_tracking(LoggingConfig(tensorboard=True))


def test_local_stores_become_absolute_file_uris(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolved_tracking_uri("") == ""
    assert resolved_tracking_uri("mlruns") == (tmp_path / "mlruns").as_uri()
    assert resolved_tracking_uri("file:mlruns") == (tmp_path / "mlruns").as_uri()
    assert resolved_tracking_uri("file:///abs/mlruns") == "file:///abs/mlruns"
    assert resolved_tracking_uri("http://host:5000") == "http://host:5000"


def test_params_are_the_config_flattened() -> None:
    params = flat_params(FinetuneConfig())
    assert params["checkpoint.dump.every"] == "100"
    assert params["model.processor_kwargs"] == "{}"
    assert "logging.mlflow_tracking_uri" in params and "data" not in params

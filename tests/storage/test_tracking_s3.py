"""Tracking with ``dump_dir`` in a bucket (moto's S3 on loopback): TensorBoard events are written
locally and uploaded after every row; a resumed run purges the events past its step and continues
the same MLflow run (its id kept in the bucket)."""

from __future__ import annotations

import json

from ray_vlm.config import FinetuneConfig, load_config
from ray_vlm.storage import Location
from ray_vlm.train.tracking import MLFLOW_RUN, TENSORBOARD_DIR, Trackers


def _row(step: int, loss: float) -> dict:
    return {"step": step, "loss": loss, "lr": 1e-3, "grad_norm": 2.0, "samples_per_s": 4.0}


def test_events_in_a_bucket_and_a_resume(s3, tmp_path, monkeypatch) -> None:
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dump_dir = Location.of(s3.uri("tracking/run"))
    store = (tmp_path / "mlruns").as_uri()
    cfg = load_config(
        FinetuneConfig,
        [
            f"dump_dir={dump_dir.uri}",
            "logging.tensorboard=true",
            f"logging.mlflow_tracking_uri={store}",
        ],
    )
    first = Trackers(cfg, resumed_step=0)
    first.log(_row(1, 3.0), 1)
    assert (dump_dir / TENSORBOARD_DIR).iterdir(), "uploaded after the first row"
    first.log(_row(2, 2.0), 2)
    # the worker died here; the resumed run starts after step 1
    second = Trackers(cfg, resumed_step=1)
    second.log(_row(2, 1.5), 2)
    second.log(_row(3, 1.0), 3)
    second.close()

    local = (dump_dir / TENSORBOARD_DIR).download(tmp_path / "tb")
    events = EventAccumulator(str(local))
    events.Reload()
    assert [(s.step, s.value) for s in events.Scalars("loss")] == [(1, 3.0), (2, 1.5), (3, 1.0)]

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(store)
    run_id = json.loads((dump_dir / MLFLOW_RUN).read_text())["run_id"]
    [run] = client.search_runs([client.get_experiment_by_name("ray_vlm").experiment_id])
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.params["dump_dir"] == dump_dir.uri
    assert run.data.metrics["loss"] == 1.0

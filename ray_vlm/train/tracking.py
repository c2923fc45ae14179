"""Experiment tracking: TensorBoard event files and an MLflow run, fed with the rows of
``metrics.jsonl`` (``RunLog.metrics``), so every metric any stage logs there reaches both.

Both are off by default and need no network (a local MLflow store). ``Trackers(cfg, resumed_step)``
lives on rank 0 beside the ``RunLog``:

- ``logging.tensorboard``: ``<dump_dir>/tensorboard/`` holds event files with one scalar per
  numeric key of each row (tag = key, at the row's step). A local ``dump_dir`` is written directly;
  in a bucket the events are written to a local folder and uploaded after every row. A resumed run
  writes a new event file that purges the events past the resumed step (``purge_step``), as
  ``metrics.jsonl`` drops its lines.
- ``logging.mlflow_tracking_uri``: one MLflow run per ``dump_dir`` in ``logging.mlflow_experiment``,
  named ``name``; its id is kept in ``<dump_dir>/mlflow_run.json`` (with the tracking URI,
  credentials masked) so that a restarted or re-run ``train`` continues the same run. Params: the resolved config flattened to ``section.key``
  (a resume adds keys the run lacks; values MLflow already holds are never changed); metrics: each
  row at its step; tag ``export_location``: set by ``log_export`` when the run is exported.
  A local store is MLflow's file store (``MLFLOW_ALLOW_FILE_STORE`` is set for it: MLflow 3 keeps
  it in maintenance mode but it needs no database).

Packages are imported only when a tracker is on; ``check_tracking`` raises a one-line ``UserError``
naming ``pip install 'ray-vlm[tracking]'`` when one is missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from ray_vlm.config import FinetuneConfig, UserError
from ray_vlm.config.schema import LoggingConfig
from ray_vlm.config.secrets import mask_text, mask_value
from ray_vlm.storage import Location

TENSORBOARD_DIR = "tensorboard"
MLFLOW_RUN = "mlflow_run.json"
EXPORT_TAG = "export_location"
INSTALL = "pip install 'ray-vlm[tracking]'"
PARAMS_PER_CALL = 100  # MLflow's log_batch limit


def check_tracking(logging: LoggingConfig) -> None:
    """``UserError`` when a tracker is on and its package is not installed."""
    wanted = {
        "logging.tensorboard": ("tensorboard", logging.tensorboard),
        "logging.mlflow_tracking_uri": ("mlflow", bool(logging.mlflow_tracking_uri)),
    }
    for key, (package, on) in wanted.items():
        if not on:
            continue
        try:
            __import__(package)
        except ImportError:
            raise UserError(f"{key} needs the '{package}' package: {INSTALL}") from None


def resolved_tracking_uri(uri: str) -> str:
    """A local store as an absolute ``file://`` URI (workers run elsewhere); others unchanged."""
    scheme = urlsplit(uri).scheme
    if not uri or (len(scheme) > 1 and scheme != "file"):
        return uri
    path = uri[len("file://") :] if uri.startswith("file://") else uri.removeprefix("file:")
    return Path(path).expanduser().resolve().as_uri()


def flat_params(cfg: object, prefix: str = "") -> dict[str, str]:
    """A config dataclass as ``{"section.key": value}``; lists and dicts as JSON; secrets
    masked (``config.secrets``: credentials in URIs such as ``logging.mlflow_tracking_uri``)."""
    params: dict[str, str] = {}
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            params.update(flat_params(value, f"{key}."))
        else:
            value = mask_value(field.name, value)
            params[key] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return params


def _client(uri: str):
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def _numbers(row: dict) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in row.items()
        if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


class Trackers:
    def __init__(self, cfg: FinetuneConfig, resumed_step: int) -> None:
        check_tracking(cfg.logging)
        self.dump_dir = Location.of(cfg.dump_dir)
        self.writer = self.local_events = None
        self.mlflow = self.run_id = None
        if cfg.logging.tensorboard:
            self._open_tensorboard(resumed_step)
        if cfg.logging.mlflow_tracking_uri:
            self._open_mlflow(cfg)

    def _open_tensorboard(self, resumed_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        target = self.dump_dir / TENSORBOARD_DIR
        if target.is_local:
            folder = Path(target.uri)
        else:
            self.local_events = folder = Path(tempfile.mkdtemp(prefix="ray_vlm_tb_"))
        self.writer = SummaryWriter(str(folder), purge_step=resumed_step + 1)

    def _open_mlflow(self, cfg: FinetuneConfig) -> None:
        uri = cfg.logging.mlflow_tracking_uri
        self.mlflow = client = _client(uri)
        record = self.dump_dir / MLFLOW_RUN
        saved = json.loads(record.read_text()) if record.is_file() else {}
        if saved.get("tracking_uri") == mask_text(uri):
            self.run_id = saved["run_id"]
            client.update_run(self.run_id, status="RUNNING")
        else:
            found = client.get_experiment_by_name(cfg.logging.mlflow_experiment)
            experiment = (
                found.experiment_id
                if found
                else client.create_experiment(cfg.logging.mlflow_experiment)
            )
            self.run_id = client.create_run(experiment, run_name=cfg.name).info.run_id
            kept = {"tracking_uri": mask_text(uri), "run_id": self.run_id}
            record.write_text(json.dumps(kept) + "\n")
        from mlflow.entities import Param

        logged = client.get_run(self.run_id).data.params
        params = [Param(k, v) for k, v in flat_params(cfg).items() if k not in logged]
        for start in range(0, len(params), PARAMS_PER_CALL):
            client.log_batch(self.run_id, params=params[start : start + PARAMS_PER_CALL])

    def log(self, row: dict, step: int) -> None:
        """Every numeric value of ``row`` (but ``step``) at ``step``."""
        values = _numbers(row)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)
            self.writer.flush()
            if self.local_events is not None:
                (self.dump_dir / TENSORBOARD_DIR).upload(self.local_events)
        if self.mlflow is not None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            metrics = [Metric(k, v, now, step) for k, v in values.items()]
            self.mlflow.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        """End of training: last events written (and uploaded), the MLflow run marked finished."""
        if self.writer is not None:
            self.writer.close()
            if self.local_events is not None:
                (self.dump_dir / TENSORBOARD_DIR).upload(self.local_events)
                shutil.rmtree(self.local_events, ignore_errors=True)
            self.writer = None
        if self.mlflow is not None:
            self.mlflow.set_terminated(self.run_id)
            self.mlflow = None


def log_export(cfg: FinetuneConfig, location: Location) -> None:
    """Tag the run's MLflow run (``<dump_dir>/mlflow_run.json``) with the export's location."""
    uri = resolved_tracking_uri(cfg.logging.mlflow_tracking_uri)
    record = Location.of(cfg.dump_dir) / MLFLOW_RUN
    if not uri or not record.is_file():
        return
    saved = json.loads(record.read_text())
    if saved.get("tracking_uri") == mask_text(uri):
        _client(uri).set_tag(saved["run_id"], EXPORT_TAG, location.uri)

"""A run several test modules assert on, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_vlm.config import FinetuneConfig, load_config
from tests.conftest import REPO


def stage_cfg(
    tmp: Path, assets: Path, stage: int, precision: str, *overrides: str
) -> FinetuneConfig:
    """2 workers, ZeRO ``stage`` in ``precision``, 3 steps of 2 demo captions, lr 1e-3."""
    return load_config(
        FinetuneConfig,
        [
            f"dump_dir={tmp / 'run'}",
            f"checkpoint.init_ckpt_path={assets / 'models/llava'}",
            f"data.datasets_yaml={assets / 'datasets.yaml'}",
            f"distributed.deepspeed_config={REPO / f'configs/deepspeed/zero{stage}.json'}",
            f"distributed.zero_stage={stage}",
            f"distributed.precision={precision}",
            "data.datamix=demo_captions:1",
            "data.preprocess_workers=0",  # each rank encodes its records: no actors to start
            "steps=3",
            "batch_size=2",
            "logging.freq=1",
            "optim.warmup=1",
            "optim.lr=1e-3",
            *overrides,
        ],
    )


@pytest.fixture(scope="session")
def zero0_tracked(demo_assets: Path, tmp_path_factory, ray_local):
    """``(cfg, train_and_export(cfg))``: 2 workers, ZeRO-0 in fp32, 3 steps of 2 demo captions,
    TensorBoard and a local MLflow store on. ``test_precision_stages`` reads its gradient norms and
    weights, ``test_tracking`` its trackers and export (one run: a fine-tune costs ~25 s here)."""
    from ray_vlm.export.finetune import train_and_export

    tmp = tmp_path_factory.mktemp("zero0_tracked")
    cfg = stage_cfg(
        tmp,
        demo_assets,
        0,
        "fp32",
        "logging.tensorboard=true",
        f"logging.mlflow_tracking_uri=file://{tmp / 'mlruns'}",
        "logging.mlflow_experiment=tracking_test",
    )
    return cfg, train_and_export(cfg)

"""Real 2-worker DeepSpeed checkpoints of the tiny models (``runs.RUNS``), trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.export.runs import train_runs


@pytest.fixture(scope="session")
def checkpoints(ray_local, demo_assets: Path, tmp_path_factory) -> dict[str, Path]:
    """Run name -> its checkpoint step dir."""
    return train_runs(demo_assets, tmp_path_factory.mktemp("runs"))

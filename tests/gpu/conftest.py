"""GPU tests (``make test-gpu``): every test here is marked ``gpu`` and skipped without CUDA.

The GPU machine may have torch and transformers only (plus ``make gpu-wheels``' wheelhouse, no
timm or torchvision): ``demo_assets`` here builds the one tiny model these tests use."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

GPUS = torch.cuda.device_count()
MODELS = ("llava",)  # every model tests/gpu trains, serves or evaluates


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs a CUDA GPU (make test-gpu on a GPU machine)")
    for item in items:
        if "tests/gpu/" in str(item.fspath):
            item.add_marker(pytest.mark.gpu)
            if not GPUS:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def demo_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite's ``demo_assets`` (40 train / 10 test images) with ``MODELS`` only."""
    from ray_vlm.demo.assets import make_demo_assets

    out = tmp_path_factory.mktemp("gpu_assets")
    return make_demo_assets(out, counts={"train": 40, "test": 10}, models=MODELS)

"""GPU tests (``make test-gpu``): every test here is marked ``gpu`` and skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

GPUS = torch.cuda.device_count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs a CUDA GPU (make test-gpu on a GPU machine)")
    for item in items:
        if "tests/gpu/" in str(item.fspath):
            item.add_marker(pytest.mark.gpu)
            if not GPUS:
                item.add_marker(skip)

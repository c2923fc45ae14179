"""Shared fixtures: small demo assets (data in both guides' layouts + three tiny models)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Ray Train's controller sees its workers start, finish or die on a poll every 2 s (its default,
# sized for big clusters); every process and cluster the tests start polls every 0.25 s: a run of
# the suite's size ends ~3 s sooner (a 3-step run, 25.5 -> 22.5 s), with some 40 runs in it.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
# The venv's tools first (as `make test` has them) for this process and every cluster and job it
# starts: DeepSpeed JIT-builds its CPU ops with the first `ninja` on PATH, and a venv ninja and a
# system one rebuild them in turn (~30-50 s each), each taking the other's build for stale.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
# Downloads from buckets go to a cache of the suite's own, removed after it, not the user's.
if "RAY_VLM_CACHE" not in os.environ:
    os.environ["RAY_VLM_CACHE"] = tempfile.mkdtemp(prefix="ray_vlm_test_cache_")
    atexit.register(shutil.rmtree, os.environ["RAY_VLM_CACHE"], ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]
LOCAL_TEST_CPUS = 8


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray cluster for every test that needs it (``ray_vlm``'s own ``ensure_ray``),
    with room for the largest run a test starts (training workers, preprocessing actors and Serve
    replicas of a few tests side by side on the 2 cores)."""
    import ray

    from ray_vlm.preprocess.ray_runtime import ensure_ray

    ensure_ray(min_cpus=LOCAL_TEST_CPUS)
    yield
    ray.shutdown()


@pytest.fixture
def no_ray(ray_local):
    """No Ray connection during the test (its first run starts a cluster of its own, as in a
    fresh notebook); the session's cluster is back after it."""
    import ray

    from ray_vlm.preprocess.ray_runtime import ensure_ray

    ray.shutdown()
    yield
    ray.shutdown()
    ensure_ray(min_cpus=LOCAL_TEST_CPUS)


@pytest.fixture(scope="session")
def demo_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo assets with 40 train / 10 test images and all tiny models, built once per session."""
    from ray_vlm.demo.assets import make_demo_assets

    return make_demo_assets(tmp_path_factory.mktemp("assets"), counts={"train": 40, "test": 10})


@pytest.fixture(scope="session")
def family_assets(demo_assets: Path) -> Path:
    """``demo_assets`` with every family stand-in built beside its models, once per session."""
    from ray_vlm.demo.assets import MODEL_BUILDERS
    from ray_vlm.demo.shapes import corpus

    for name, build in MODEL_BUILDERS.items():
        if not (demo_assets / "models" / name).exists():
            build(demo_assets / "models" / name, corpus())
    return demo_assets

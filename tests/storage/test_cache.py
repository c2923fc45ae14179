"""The bounded local cache (``ray_vlm.storage.cache``): least recently used entries go first once
it holds more than ``RAY_VLM_CACHE_MAX_GB``, never one a live process holds. Each entry is taken
by a separate process, as in use (a Serve replica, a ``consolidate``), so a process's exit is what
releases it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ENTRY_BYTES = 64 * 1024
TAKE = f"""
import sys
from pathlib import Path
from ray_vlm.storage.cache import cached
def fill(tmp: Path) -> None:
    (tmp / "weights.bin").write_bytes(b"w" * {ENTRY_BYTES})
print(cached(Path(sys.argv[1]) / sys.argv[2] / "model", fill), flush=True)
if len(sys.argv) > 3:  # hold it until told to exit
    sys.stdin.readline()
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("RAY_VLM_CACHE", str(root))
    monkeypatch.setenv("RAY_VLM_CACHE_MAX_GB", str(2.5 * ENTRY_BYTES / 2**30))  # room for two
    return root


def _take(root: Path, key: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-c", TAKE, str(root), key], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    time.sleep(0.02)  # distinct use times
    return done


@pytest.fixture
def holder(cache: Path) -> Iterator[subprocess.Popen]:
    """A process holding entry ``held`` (taken first, so the least recently used)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", TAKE, str(cache), "held", "hold"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.stdout.readline().strip().endswith("held/model")
    time.sleep(0.02)
    yield proc
    proc.communicate("\n", timeout=30)


def _entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def test_least_recently_used_entries_go_first(cache: Path) -> None:
    for key in ("a", "b"):
        _take(cache, key)
    assert _entries(cache) == ["a", "b"]
    _take(cache, "a")  # used again: b is now the least recent
    _take(cache, "c")
    assert _entries(cache) == ["a", "c"]
    assert (cache / "a/model/weights.bin").stat().st_size == ENTRY_BYTES


def test_an_entry_in_use_stays_and_the_excess_is_said(cache: Path, holder, monkeypatch) -> None:
    _take(cache, "a")
    _take(cache, "b")  # over: a goes, not the older held one
    assert _entries(cache) == ["b", "held"]
    monkeypatch.setenv("RAY_VLM_CACHE_MAX_GB", str(0.5 * ENTRY_BYTES / 2**30))  # not even one
    done = _take(cache, "c")
    assert _entries(cache) == ["c", "held"]  # c is its taker's until it exits
    assert "holds 0.0 GB in use, over RAY_VLM_CACHE_MAX_GB" in done.stderr


def test_a_bad_bound_is_one_line(cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAY_VLM_CACHE_MAX_GB", "lots")
    done = subprocess.run(
        [sys.executable, "-c", TAKE, str(cache), "a"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "RAY_VLM_CACHE_MAX_GB=lots: not a number of GB (e.g. 100)" in done.stderr

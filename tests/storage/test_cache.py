"""The bounded local cache (``ray_vlm.storage.cache``): least recently used entries go first once
it holds more than ``RAY_VLM_CACHE_MAX_GB``, never one a live process holds. Each entry is taken
by a separate process, as in use (a Serve replica, a ``consolidate``), so a process's exit is what
releases it; processes asking for one entry at once download it once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ENTRY_BYTES = 64 * 1024
A, B, C, HELD = (letter * 16 for letter in "abcd")  # entries' names: keys of 16 hex digits
TAKE = f"""
import sys, time
from pathlib import Path
from ray_vlm.storage.cache import cached
def fill(tmp: Path) -> None:
    time.sleep(0.3)  # a download: others arriving meanwhile wait for it
    (tmp / "weights.bin").write_bytes(b"w" * {ENTRY_BYTES})
    print("filled", flush=True)
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
        [sys.executable, "-c", TAKE, str(cache), HELD, "hold"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "filled"
    assert proc.stdout.readline().strip().endswith(f"{HELD}/model")
    time.sleep(0.02)
    yield proc
    proc.communicate("\n", timeout=30)


def _entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def test_least_recently_used_entries_go_first_and_nothing_else(cache: Path) -> None:
    (cache / "huggingface").mkdir(parents=True)  # not an entry: never removed
    (cache / "huggingface/big.bin").write_bytes(b"h" * 4 * ENTRY_BYTES)
    for key in (A, B):
        _take(cache, key)
    assert _entries(cache) == [A, B, "huggingface"]
    _take(cache, A)  # used again: B is now the least recent
    _take(cache, C)
    assert _entries(cache) == [A, C, "huggingface"]
    assert (cache / A / "model/weights.bin").stat().st_size == ENTRY_BYTES


def test_processes_asking_at_once_fill_an_entry_once(cache: Path) -> None:
    takers = [
        subprocess.Popen(
            [sys.executable, "-c", TAKE, str(cache), A], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outs = [t.communicate(timeout=60)[0] for t in takers]
    assert sum(out.count("filled") for out in outs) == 1
    assert all(out.strip().endswith(f"{A}/model") for out in outs)


def test_an_entry_in_use_stays_and_the_excess_is_said(cache: Path, holder, monkeypatch) -> None:
    _take(cache, A)
    _take(cache, B)  # over: A goes, not the older held one
    assert _entries(cache) == [B, HELD]
    monkeypatch.setenv("RAY_VLM_CACHE_MAX_GB", str(0.5 * ENTRY_BYTES / 2**30))  # not even one
    done = _take(cache, C)
    assert _entries(cache) == [C, HELD]  # C is its taker's until it exits
    assert "holds 0.0 GB in use, over RAY_VLM_CACHE_MAX_GB" in done.stderr


def test_a_bad_bound_is_one_line(cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAY_VLM_CACHE_MAX_GB", "lots")
    done = subprocess.run(
        [sys.executable, "-c", TAKE, str(cache), A], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "filled" not in done.stdout  # said before any download
    assert "RAY_VLM_CACHE_MAX_GB=lots: not a number of GB (e.g. 100)" in done.stderr

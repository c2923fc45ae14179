"""Benchmarks that cannot rot: every script runs at ``--smoke`` size and its last line carries
every field the README's table reads; the README's table is the one made from
``benchmarks/results.jsonl`` (``benchmarks/suite.py``)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import REPO

SPEC = importlib.util.spec_from_file_location("bench_suite", REPO / "benchmarks/suite.py")
suite = sys.modules.setdefault(SPEC.name, importlib.util.module_from_spec(SPEC))
SPEC.loader.exec_module(suite)

SMOKE_TIMEOUT_S = 300  # the target is 60 s on an idle machine; CI's 2 cores may be shared


SCRIPTS = {suite.script(name): name for name in reversed(suite.BENCHMARKS)}
"""Each script and the benchmark whose settings its smoke run takes (its own name's)."""


def test_every_script_under_benchmarks_is_in_the_suite() -> None:
    """Every script but ``suite.py`` (what scripts share lives in ``benchmarks/common/``)."""
    scripts = {p.stem for p in (REPO / "benchmarks").glob("*.py")} - {"suite"}
    assert scripts == set(SCRIPTS)


def test_the_readme_table_is_made_from_the_results_file() -> None:
    if not suite.RESULTS.exists():
        pytest.skip("benchmarks/results.jsonl: no `make bench` run recorded yet")
    records = suite.latest()
    unmeasured = set(suite.BENCHMARKS) - set(records)
    assert set(records) <= set(suite.BENCHMARKS), "results.jsonl holds an unknown benchmark"
    assert all(suite.BENCHMARKS[name].gpu for name in unmeasured), (
        f"results.jsonl lacks a full `make bench` run of {sorted(unmeasured)}"
    )  # a GPU-only benchmark's row says "not run yet" until a GPU machine records one
    for name, record in records.items():
        assert not suite.missing_fields(name, record["result"]), name
        assert not record["result"].get("smoke"), f"{name}: a smoke run is not a measurement"
    assert suite.table(records) in (REPO / "README.md").read_text()


def test_a_missing_field_is_named() -> None:
    result = {"ratio": 1.0, "padding_share": 0.1}
    assert "loop_samples_per_s" in suite.missing_fields("data_throughput", result)
    with pytest.raises(json.JSONDecodeError):
        suite.last_json_line("warming up\nratio 1.5\n")


def _smoke(name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / f"{suite.script(name)}.py"), "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def smoke_runs() -> dict[str, subprocess.CompletedProcess]:
    """Every script at ``--smoke`` size, once, two at a time, longest first: most of a smoke run
    is starting Ray, workers and models, whose waits another run fills."""
    names = sorted(SCRIPTS.values(), key=lambda n: suite.BENCHMARKS[n].smoke_s, reverse=True)
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(names, pool.map(_smoke, names), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCRIPTS.values()))
def test_smoke_run_prints_every_field_the_readme_reads(name: str, smoke_runs) -> None:
    done = smoke_runs[name]
    assert done.returncode == 0, done.stderr[-4000:]
    result = suite.last_json_line(done.stdout)
    assert result.get("smoke") is True
    for row in (n for n in suite.BENCHMARKS if suite.script(n) == suite.script(name)):
        assert not suite.missing_fields(row, result), row
        suite.BENCHMARKS[row].result.format(**result)  # the README cell can be made from it

"""The datamix plan, without Ray: quotas per source and a mix that holds along the stream."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ray_vlm.preprocess.stream_plan import CHUNK_LINES, plan_weighted, quotas
from ray_vlm.records import DatamixEntry
from tests.preprocess.helpers import qa, write_plm


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_stretch_of_the_plan_holds_the_mix(tmp_path: Path, seed: int) -> None:
    small = write_plm(tmp_path / "small", [qa("q", f"a{i}") for i in range(500)])
    large = write_plm(tmp_path / "large", [qa("q", f"b{i}") for i in range(3000)])
    mix = [(DatamixEntry("small", 1, 0.25), small), (DatamixEntry("large", 3, 0.75), large)]
    plan = plan_weighted(mix, total=8000, seed=seed)
    names = ["small" if c.spec is small else "large" for c in plan for _ in range(c.limit)]
    assert Counter(names) == {"small": 2000, "large": 6000}  # 4 passes over the small source
    window = 25 * CHUNK_LINES
    for start in range(0, len(names) - window + 1, window // 2):
        share = Counter(names[start : start + window])["small"] / window
        assert abs(share - 0.25) < 0.03, (start, share)


def test_quotas_sum_to_the_total_whatever_the_rounding() -> None:
    assert quotas([1 / 3] * 3, 100) == [34, 33, 33]
    assert quotas([0.75, 0.25], 112) == [84, 28]
    assert quotas([0.5, 0.3, 0.2], 7) == [4, 2, 1]
    for total in range(50):
        assert sum(quotas([0.1, 0.45, 0.45], total)) == total


def test_a_plan_holds_exactly_the_total(tmp_path: Path) -> None:
    specs = [write_plm(tmp_path / n, [qa("q", n)] * 70) for n in "abc"]
    mix = [(DatamixEntry(n, 1, 1 / 3), s) for n, s in zip("abc", specs, strict=True)]
    assert sum(c.limit for c in plan_weighted(mix, total=100, seed=0)) == 100

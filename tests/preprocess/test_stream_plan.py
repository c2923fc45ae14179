"""The datamix plan, without Ray: quotas per source and a mix that holds along the stream."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ray_vlm.preprocess.stream_plan import CHUNK_LINES, plan_weighted
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

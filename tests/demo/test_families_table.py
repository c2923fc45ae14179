"""The README's "Model families" table is what the code and the tests do: each stand-in's layout is
the one ray_vlm picks for its processor; "yes" in the batch and multi-image columns exactly for the
families ``tests/preprocess/test_contract.py`` runs so; end to end in CI exactly for
those ``tests/demo/test_family_runs.py`` runs there (``IN_CI``) and by ``make test-families`` for
all it runs."""

from __future__ import annotations

import re
from pathlib import Path

from ray_vlm.demo.assets import MODEL_BUILDERS
from ray_vlm.preprocess.layouts import layout_for
from ray_vlm.preprocess.processor import load_processor
from tests.conftest import REPO
from tests.demo.test_family_runs import ALL_FAMILIES, IN_CI
from tests.preprocess.test_contract import FAMILIES as CONTRACT_FAMILIES
from tests.preprocess.test_contract import ONE_IMAGE


def _families_table() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    table = text.split("<!-- families table")[1].split("<!-- end of families table")[0]
    rows = [
        line.strip("|").split("|")
        for line in table.splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    return [[cell.strip() for cell in row] for row in rows[1:]]


def test_the_readme_families_table_is_what_the_code_and_tests_do(family_assets: Path) -> None:
    rows = _families_table()
    named = [re.findall(r"`(\w+)`", row[0]) for row in rows]
    assert sorted(n for names in named for n in names) == sorted(MODEL_BUILDERS)
    for names, (_, layout, batch, multi, end_to_end) in zip(named, rows, strict=True):
        for name in names:
            processor = load_processor(str(family_assets / "models" / name))
            assert layout_for(processor).name == layout, name
        assert (batch == "yes") == any(n in CONTRACT_FAMILIES for n in names), names
        assert (multi == "yes") == all(n not in ONE_IMAGE for n in names), names
        in_ci = "test_family_runs.py" in end_to_end
        assert in_ci == any(n in IN_CI for n in names), names
        assert ("make test-families" in end_to_end) == any(n in ALL_FAMILIES for n in names)

"""Every line of a defective annotation file is a record or a reported bad record (no Ray)."""

from __future__ import annotations

import pytest

from ray_vlm.records import BadRecord, DatasetSpec, load_registry, read_records, resolve_spec
from ray_vlm.records.lines import csv_rows, json_item
from tests.records.hostile import CSV_BAD, CSV_GOOD, PLM_BAD, PLM_GOOD, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, DatasetSpec]:
    """The registry's specs, its relative paths found beside it (the tests run elsewhere)."""
    registry = write_corpus(tmp_path_factory.mktemp("hostile"))
    return {name: resolve_spec(name, spec) for name, spec in load_registry(registry).items()}


def _lines(spec: DatasetSpec) -> tuple[list[int], dict[int, str]]:
    good, bad = [], {}
    for item in read_records(spec, verify_images=False):
        line = int(item.source.rsplit(":", 1)[1])
        if isinstance(item, BadRecord):
            bad[line] = item.reason
        else:
            good.append(line)
    return good, bad


@pytest.mark.parametrize(
    ("name", "fmt", "good", "bad"),
    [("hostile_plm", "plm", sorted([*PLM_GOOD, 8]), PLM_BAD),
     ("prescription_train", "paligemma_csv", CSV_GOOD, CSV_BAD)],
)  # fmt: skip
def test_every_line_is_a_record_or_a_reported_one(corpus, name, fmt, good, bad) -> None:
    assert corpus[name].format == fmt
    found_good, found_bad = _lines(corpus[name])
    assert found_good == good
    assert sorted(found_bad) == sorted(bad)
    for line, words in bad.items():
        assert words in found_bad[line], (line, found_bad[line])
        assert len(found_bad[line]) < 300, "a reason is one readable line"


def test_line_separators_inside_json_strings_are_content(corpus) -> None:
    record = next(r for r in read_records(corpus["hostile_plm"]) if r.source.endswith(":3"))
    assert record.turns[0].text == "line\u2028sep\u2029para"
    assert record.turns[1].text == "a blue\u0085square"


def test_a_multi_line_csv_row_is_one_record_at_its_first_line(corpus) -> None:
    record = next(r for r in read_records(corpus["prescription_train"]) if r.source.endswith(":3"))
    assert record.turns[1].text == "Multi\nline name"


def test_json_item_edge_cases() -> None:
    assert json_item(b"\n") is None and json_item(b"  \r\n") is None
    assert json_item(b'\xef\xbb\xbf{"a": 1}\n') == {"a": 1}  # a BOM on the first line
    assert "byte 0xff at column 8" in str(json_item(b'{"a": "\xff"}'))


def test_csv_rows_number_rows_by_their_first_line() -> None:
    rows = list(csv_rows([b"A,B\r\n", b'1,"x\r\n', b'y"\r\n', b"\r\n", b"2,z\r\n"]))
    assert rows == [(2, {"A": "1", "B": "x\r\ny"}), (5, {"A": "2", "B": "z"})]

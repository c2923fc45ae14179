"""The ``data.bad_records`` policy, without Ray (``report.RecordReport`` collects the items).

A report item is ``{dataset, source, reason, kind}``. Kinds: ``invalid`` (the record does not
parse), ``image`` (an image does not decode), ``too_long`` (image tokens + prompt exceed
``data.max_seq_len``), ``truncated`` (kept, text cut).
"""

from __future__ import annotations

ERROR_KINDS = ("invalid", "image", "too_long")


class BadRecordError(RuntimeError):
    """Raised under ``data.bad_records=fail`` at the first unusable record."""


def raise_on_fail(items: list[dict[str, str]], policy: str) -> None:
    """Under the ``fail`` policy, raise ``BadRecordError`` on the first error item of ``items``."""
    errors = [i for i in items if i["kind"] in ERROR_KINDS]
    if errors and policy == "fail":
        first = errors[0]
        raise BadRecordError(
            f"{first['source']}: {first['reason']} "
            "(data.bad_records=fail stops at the first bad record; use skip to count and go on)"
        )


def left_out_lines(counts: dict[str, dict[str, int]]) -> list[str]:
    """``{dataset: {kind: n}}`` (a run's ``RecordReport`` counts) as ``left out of <dataset>: <n>
    <kind>`` lines, what a run prints at its end so that no record is dropped unsaid."""
    return [
        f"left out of {dataset}: {n} {kind}"
        for dataset, kinds in sorted(counts.items())
        for kind, n in sorted(kinds.items())
    ]

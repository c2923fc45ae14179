"""Where the pipeline reports records it could not use; nothing is dropped unreported.

``RecordReport`` is a small Ray actor shared by every read and preprocessing task of a pipeline:
tasks add ``{dataset, source, reason, kind}`` items; the driver reads counts and the list.
Kinds and the ``data.bad_records`` policy: ``bad_records.py``.
"""

from __future__ import annotations

from collections import Counter

import ray

from ray_vlm.preprocess.bad_records import ERROR_KINDS, raise_on_fail

MAX_LISTED = 10_000


@ray.remote(num_cpus=0)
class RecordReport:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._items: list[dict[str, str]] = []

    def add(self, items: list[dict[str, str]]) -> None:
        for item in items:
            self._counts[(item["dataset"], item["kind"])] += 1
            if len(self._items) < MAX_LISTED:
                self._items.append(item)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{dataset: {kind: count}}``."""
        out: dict[str, dict[str, int]] = {}
        for (dataset, kind), n in self._counts.items():
            out.setdefault(dataset, {})[kind] = n
        return out

    def items(self, kinds: tuple[str, ...] = ERROR_KINDS) -> list[dict[str, str]]:
        """Reported items of the given kinds (the first ``MAX_LISTED`` of all kinds are kept)."""
        return [i for i in self._items if i["kind"] in kinds]


def report_or_raise(report, items: list[dict[str, str]], policy: str) -> None:
    """Send ``items`` to the report; under the ``fail`` policy raise on the first error item."""
    if not items:
        return
    raise_on_fail(items, policy)
    ray.get(report.add.remote(items))

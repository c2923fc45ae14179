"""Stream a split through the generation replicas: records -> predictions.

``predict(spec, dispatcher, app, cfg, label)``: Ray Data reads and validates every record of
``spec`` in Ray tasks and streams them, in batches of ``cfg.records_per_batch``, to one
``Dispatcher`` actor (started once per ``EvalSession``); it sends each batch whole to one
generation replica of the Serve application ``app`` through the in-cluster handle (no HTTP;
image *paths*, read by the replica), with ``cfg.in_flight`` batches in flight so that every
replica prepares its next batch while it generates the current one, and streams the prediction
rows back to the driver. Records are small (paths and text), so one dispatcher keeps many
replicas busy, and no process starts per evaluation. Greedy decoding.

Each output row: ``id`` (``file:line``), ``images`` (paths), ``question`` (first user turn),
``question_type`` (the record's, ``""`` when it has none), ``reference`` (the record's answer),
``prediction`` and ``error``. A record the replica refuses (its image cannot be read, its prompt
is too long) or that no replica answered gives ``prediction=""`` and the reason in ``error``:
counted and reported, never fatal. Records that do not parse go to the ``RecordReport`` as in
training. A tqdm bar on the driver (stderr) counts the records as their predictions arrive.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ray
from ray.actor import ActorHandle
from tqdm import tqdm

from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.model import Generation, SamplingParams
from ray_vlm.model.request_batches import Refusal
from ray_vlm.preprocess.record_stream import record_dataset, records_of_batch
from ray_vlm.preprocess.report import RecordReport
from ray_vlm.preprocess.stream_plan import plan_each_once
from ray_vlm.records import DatamixEntry, DatasetSpec, Record
from ray_vlm.serve import VLMHandle
from ray_vlm.serve.handle import PendingRecords
from ray_vlm.serve.request import RecordBatch, RecordPrompt


@dataclass
class Predicted:
    rows: list[dict[str, Any]]
    """One per record that parsed (see the module docstring)."""
    invalid: list[dict[str, str]]
    """The records that did not parse (``RecordReport`` items)."""
    seconds: float
    """From the stream's start to its last prediction."""
    steady_seconds: float
    """From the first batch's predictions to the last (0 when they all came at once)."""
    steady_rows: int
    """Rows that arrived after the first batch's."""

    def rates(self) -> dict[str, float]:
        """``records_per_s`` end to end and ``steady_records_per_s`` after the first batch."""
        steady = self.steady_rows / self.steady_seconds if self.steady_seconds else 0.0
        return {"records_per_s": len(self.rows) / self.seconds, "steady_records_per_s": steady}


def _rows(records: list[Record], answers: list[Generation | Refusal]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.source,
            "images": list(r.images),
            "question": r.prompt,
            "question_type": r.question_type or "",
            "reference": r.answer,
            "prediction": a.text if isinstance(a, Generation) else "",
            "error": a.reason if isinstance(a, Refusal) else "",
        }
        for r, a in zip(records, answers, strict=True)
    ]


@ray.remote(num_cpus=0)
class Dispatcher:
    """Sends the record batches to the replicas and streams back their prediction rows.

    An actor rather than the driver: a process that used a Serve handle keeps a call open on
    Serve's controller for as long as it lives, and that call fails, on the driver's console,
    when Serve shuts down; the ``EvalSession`` kills this actor first. It holds no CPU: it only
    waits on the replicas.
    """

    def __init__(self) -> None:
        self._handles: dict[str, VLMHandle] = {}

    def rows(
        self, records: ray.data.Dataset, app: str, retries: int, params: SamplingParams,
        batch_size: int, in_flight: int,
    ) -> Iterator[list[dict[str, Any]]]:  # fmt: skip
        """One list of prediction rows per batch of ``batch_size`` records, in order, with
        ``in_flight`` batches at the replicas while the oldest is awaited."""
        if app not in self._handles:
            self._handles[app] = VLMHandle.connect(app, retries)
        vlm = self._handles[app]
        sent: deque[tuple[list[Record], PendingRecords]] = deque()
        for columns in records.iter_batches(batch_size=batch_size):
            batch = records_of_batch(columns)
            prompts = tuple(RecordPrompt(tuple(r.images), tuple(r.turns[:-1])) for r in batch)
            sent.append((batch, vlm.submit_records(RecordBatch(prompts, params))))
            if len(sent) >= in_flight:
                batch, pending = sent.popleft()
                yield _rows(batch, pending.result())
        while sent:
            batch, pending = sent.popleft()
            yield _rows(batch, pending.result())


def predict(
    spec: DatasetSpec, dispatcher: ActorHandle, app: str, cfg: EvalConfig, label: str
) -> Predicted:
    """Every record of ``spec`` answered by the application ``app``, through ``dispatcher``
    (see the module docstring).

    ``label`` names the model on the progress bar, whose total is the annotation's line count
    until the stream ends (unparsable lines never arrive; the bar then shows how many).
    """
    start = time.perf_counter()
    report = RecordReport.remote()
    plan = plan_each_once([(DatamixEntry(spec.name, 1.0, 1.0), spec)])
    params = SamplingParams(max_new_tokens=cfg.max_new_tokens)
    stream = dispatcher.rows.remote(
        record_dataset(plan, report, "skip"), app, cfg.serve.replica_failure_retries, params,
        cfg.records_per_batch, cfg.in_flight,
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    first_at, first_rows = 0.0, 0
    total = sum(chunk.limit for chunk in plan)
    with tqdm(total=total, desc=f"evaluate {label}", unit="record", file=sys.stderr) as bar:
        for ref in stream:
            arrived = ray.get(ref)
            if not rows:
                first_at, first_rows = time.perf_counter(), len(arrived)
            rows += arrived
            bar.update(len(arrived))
        invalid = ray.get(report.items.remote())
        if invalid:
            bar.set_postfix(invalid=len(invalid))
        bar.total = bar.n
    end = time.perf_counter()
    steady = end - first_at if rows else 0.0
    return Predicted(rows, invalid, end - start, steady, len(rows) - first_rows)

"""Stream a split through the generation replicas with Ray Data: records -> predictions.

``predict(spec, app_name, cfg)`` reads every record of ``spec`` in Ray tasks and sends them, a
Ray Data batch at a time, to the Serve application ``app_name`` through its in-cluster handle
(no HTTP); the replicas batch requests from all senders together. Greedy decoding.

Each output row: ``id`` (``file:line``), ``images`` (paths), ``question`` (first user turn),
``question_type`` (the record's, ``""`` when it has none), ``reference`` (the record's answer),
``prediction`` and ``error``. An image that cannot be read
or a generation that fails gives ``prediction=""`` and the reason in ``error``: counted and
reported, never fatal. Records that do not parse go to the ``RecordReport`` as in training.
A tqdm bar on the driver (stderr) counts the records as their predictions arrive.
"""

from __future__ import annotations

import sys
from typing import Any

import ray
from tqdm import tqdm

from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.model import SamplingParams
from ray_vlm.preprocess.record_stream import record_dataset, records_of_batch
from ray_vlm.preprocess.report import RecordReport
from ray_vlm.preprocess.stream_plan import plan_each_once
from ray_vlm.records import DatamixEntry, DatasetSpec, load_image
from ray_vlm.serve import VLMHandle

SENDER_CPUS = 0.25  # senders wait on the replicas; leave the CPUs to them


class AskReplicas:
    """``map_batches`` callable: one per sender actor, holding the handle to the replicas."""

    def __init__(self, app_name: str, retries: int, max_new_tokens: int) -> None:
        self.vlm = VLMHandle.connect(app_name, retries)
        self.params = SamplingParams(max_new_tokens=max_new_tokens)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        records = records_of_batch(batch)
        errors = [""] * len(records)
        requests, asked = [], []
        for i, record in enumerate(records):
            try:
                images = [load_image(p) for p in record.images]
            except ValueError as err:
                errors[i] = str(err)
                continue
            requests.append((images, list(record.turns[:-1])))
            asked.append(i)
        predictions = [""] * len(records)
        answers = self.vlm.generate_many(requests, self.params, return_errors=True)
        for i, answer in zip(asked, answers, strict=True):
            if isinstance(answer, Exception):
                errors[i] = f"generation failed: {answer}"
            else:
                predictions[i] = answer.text
        return {
            "id": [r.source for r in records],
            "images": [list(r.images) for r in records],
            "question": [r.prompt for r in records],
            "question_type": [r.question_type or "" for r in records],
            "reference": [r.answer for r in records],
            "prediction": predictions,
            "error": errors,
        }


def predict(
    spec: DatasetSpec,
    app_name: str,
    cfg: EvalConfig,
    label: str,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """``(prediction rows, unparsable records)`` for every record of ``spec`` (see module doc).

    ``label`` names the model on the progress bar, whose total is the annotation's line count
    until the stream ends (unparsable lines never arrive; the bar then shows how many).
    Senders: a pool of 1 to ``cfg.concurrency`` actors, grown while batches wait (a split of
    one 64-line chunk has one block: a fixed pool would start senders with nothing to send).
    """
    report = RecordReport.remote()
    plan = plan_each_once([(DatamixEntry(spec.name, 1.0, 1.0), spec)])
    answered = record_dataset(plan, report, "skip").map_batches(
        AskReplicas,
        fn_constructor_args=(app_name, cfg.serve.replica_failure_retries, cfg.max_new_tokens),
        batch_size=cfg.batch_size,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cfg.concurrency),
        num_cpus=SENDER_CPUS,
    )
    rows = []
    total = sum(chunk.limit for chunk in plan)
    with tqdm(total=total, desc=f"evaluate {label}", unit="record", file=sys.stderr) as bar:
        for row in answered.iter_rows():
            rows.append({k: (list(v) if k == "images" else v) for k, v in row.items()})
            bar.update()
        invalid = ray.get(report.items.remote())
        if invalid:
            bar.set_postfix(invalid=len(invalid))
        bar.total = bar.n
    return rows, invalid

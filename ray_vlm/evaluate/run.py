"""``ray-vlm evaluate``: score a model (and optionally a second one) on a split, through Serve.

For each model: resolve it to a Hugging Face directory (consolidating a raw checkpoint if
needed), start generation replicas for it or reuse the ones an ``EvalSession`` keeps (or use the
running application ``connect_app``),
stream the split through them (``predict``), gather references, score once over everything.
Writes to ``out_dir``:

- ``predictions.jsonl``: per sample ``id, images, question, question_type, references`` and, per
  model label (``model``, ``compare``), ``prediction``/``score``/``error``;
- ``metrics.json``: ``{label: {ckpt, task, <metrics>, samples, failed, invalid_records, timing}}``
  (``timing``: seconds per stage, ``start_s`` / ``generate_s`` / ``score_s``, and records/s), plus
  ``per_question_type: {type: {<primary metric>, count}}`` when the records carry question types;
- ``report.html``: metrics (and per question type), then images beside predictions and
  references, worst first, side by side.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray_vlm.config import CONFIG_FILE, save_config
from ray_vlm.config.eval_schema import EvalConfig
from ray_vlm.config.secrets import mask_text
from ray_vlm.evaluate.html_report import write_report
from ray_vlm.evaluate.predict import predict
from ray_vlm.evaluate.scoring import PRIMARY_METRIC, Sample, gather_samples, score_samples
from ray_vlm.evaluate.session import EvalSession
from ray_vlm.export import locate_model
from ray_vlm.preprocess.ray_runtime import ensure_ray
from ray_vlm.preprocess.resources import serve_demand
from ray_vlm.records import DatasetSpec, select_datamix
from ray_vlm.train.lease import Lease


@dataclass
class EvalResult:
    metrics: dict[str, dict[str, Any]]
    """Per model label (``model``, ``compare``): its metrics (see the module docstring)."""
    out_dir: Path

    @property
    def report(self) -> Path:
        return self.out_dir / "report.html"


def _score_model(
    label: str, ckpt: str, model_dir: str, spec: DatasetSpec, cfg: EvalConfig, session: EvalSession
) -> tuple[list[Sample], dict[str, Any]]:
    """The samples and metrics of one model; ``timing``: seconds per stage (``start_s``: its
    replicas, 0 when reused; ``generate_s``; ``score_s``) and the records/s of the stream."""
    app, start_s = (
        (cfg.connect_app, 0.0) if cfg.connect_app else session.application(cfg.serve, model_dir)
    )
    predicted = predict(spec, session.dispatcher, app, cfg, label)
    start = time.perf_counter()
    samples = gather_samples(predicted.rows)
    metrics = score_samples(cfg.task, samples)
    timing = {"start_s": start_s, "generate_s": predicted.seconds,
              "score_s": time.perf_counter() - start, **predicted.rates()}  # fmt: skip
    invalid = len(predicted.invalid)
    return samples, {"ckpt": mask_text(ckpt), "task": cfg.task, **metrics, "invalid_records": invalid,
                     "timing": timing}  # fmt: skip


def _write_predictions(path: Path, samples: dict[str, list[Sample]]) -> None:
    first = next(iter(samples.values()))
    with path.open("w", encoding="utf-8") as f:
        for i, s in enumerate(first):
            row = {
                "id": s.id,
                "images": s.images,
                "question": s.question,
                "question_type": s.question_type,
                "references": s.references,
            }
            for label, model_samples in samples.items():
                m = model_samples[i]
                row[label] = {"prediction": m.prediction, "score": m.score, "error": m.error}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def evaluate(cfg: EvalConfig, session: EvalSession | None = None) -> EvalResult:
    """Score ``cfg.ckpt`` (and ``cfg.compare``) on ``cfg.data``; outputs in ``cfg.out_dir``.
    The split and the models are located before Ray starts (``UserError`` when unreachable);
    ``out_dir``'s lease is held throughout (``train.lease``: ``LeaseHeld`` while another live
    evaluation writes there).
    ``session``: replicas to share with other evaluations (one for this call when ``None``)."""
    cfg = cfg.resolve_paths()  # a config built in code has not been through load_config
    ((_, spec),) = select_datamix(f"{cfg.data}:1", cfg.datasets_yaml)
    out = Path(cfg.out_dir).resolve()
    with Lease.take(out, "out_dir"):
        models = {"model": cfg.ckpt, **({"compare": cfg.compare} if cfg.compare else {})}
        located = {
            label: locate_model(ckpt, "ckpt" if label == "model" else label)
            for label, ckpt in models.items()
        }
        ensure_ray(len(models) * serve_demand(cfg.serve, http=False).cpus)
        save_config(cfg, out / CONFIG_FILE)
        samples, metrics = {}, {}
        with contextlib.nullcontext(session) if session else EvalSession() as shared:
            for label, ckpt in models.items():
                samples[label], metrics[label] = _score_model(
                    label, ckpt, located[label], spec, cfg, shared
                )
        _write_predictions(out / "predictions.jsonl", samples)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        title = f"{cfg.task} on {cfg.data}: {PRIMARY_METRIC[cfg.task]}"
        write_report(out / "report.html", title, metrics, samples)
    return EvalResult(metrics, out)


def format_metrics(result: EvalResult) -> str:
    """A before/after table of every metric, one column per model; then, when the records carry
    question types, the primary metric per type (``vqa_accuracy [colour] (n=10)``)."""
    labels = list(result.metrics)
    first = result.metrics[labels[0]]
    keys = [k for k in first if k not in ("ckpt", "task", "per_question_type", "timing")]
    rows = [(key, [result.metrics[label].get(key) for label in labels]) for key in keys]
    metric = PRIMARY_METRIC[first["task"]]
    for qtype, entry in first.get("per_question_type", {}).items():
        name = f"{metric} [{qtype}] (n={entry['count']})"
        values = [result.metrics[label]["per_question_type"][qtype][metric] for label in labels]
        rows.append((name, values))
    for key in first.get("timing", {}):
        rows.append((key, [result.metrics[label]["timing"][key] for label in labels]))
    width = max(18, *(len(name) + 2 for name, _ in rows))
    lines = [f"{'metric':{width}s}" + "".join(f"{label:>14s}" for label in labels)]
    for name, values in rows:
        cells = [f"{v:14.4f}" if isinstance(v, float) else f"{str(v):>14s}" for v in values]
        lines.append(f"{name:{width}s}" + "".join(cells))
    return "\n".join(lines)

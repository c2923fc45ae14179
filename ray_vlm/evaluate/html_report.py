"""A self-contained HTML report: metrics, then every sample worst-first with its image.

One model: image | question | prediction | references | score. With a second model (``--compare``)
both predictions and scores stand side by side, sorted by the first model's score, and the
metrics table has one column per model (before vs after). When the samples carry question types, a
second table gives the primary metric and sample count per type (``per_question_type``, as VQAv2
reports accuracy per answer type), and each sample names its type. A last table gives the seconds
each stage took (``timing``: start, generate, score) and the records/s. Images are embedded as
small base64 thumbnails, so the file can be mailed or opened anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from PIL import Image

from ray_vlm.evaluate.scoring import PRIMARY_METRIC, Sample
from ray_vlm.records import load_image

THUMBNAIL_PX = 128
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 6px 10px; vertical-align: top; text-align: left; }
th { background: #f0f0f0; }
td.score { font-variant-numeric: tabular-nums; text-align: right; }
td.error { color: #b00; }
img { width: 96px; height: 96px; object-fit: contain; background: #000; }
"""


def _thumbnail(path: str) -> str:
    try:
        image = load_image(path)
    except ValueError as err:
        return f'<span class="error">{html.escape(str(err))}</span>'
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(Path(path).name)}" src="data:image/png;base64,{data}">'


def _prediction_cells(sample: Sample) -> str:
    if sample.error:
        return f'<td class="error">{html.escape(sample.error)}</td><td class="score">-</td>'
    return f'<td>{html.escape(sample.prediction)}</td><td class="score">{sample.score:.3f}</td>'


def _metrics_table(metrics: dict[str, dict[str, Any]]) -> str:
    names = list(metrics)
    keys = [k for k in metrics[names[0]] if k not in ("ckpt", "per_question_type", "timing")]
    head = "".join(
        f"<th>{html.escape(n)}<br><small>{html.escape(str(metrics[n]['ckpt']))}</small></th>"
        for n in names
    )
    rows = []
    for key in keys:
        cells = "".join(f'<td class="score">{_fmt(metrics[n].get(key))}</td>' for n in names)
        rows.append(f"<tr><th>{html.escape(key)}</th>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def _question_type_table(metrics: dict[str, dict[str, Any]]) -> str:
    """Type | samples | the primary metric per model; "" when no sample has a type."""
    names = list(metrics)
    by_type = metrics[names[0]].get("per_question_type")
    if not by_type:
        return ""
    metric = PRIMARY_METRIC[metrics[names[0]]["task"]]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for qtype, entry in by_type.items():
        cells = "".join(
            f'<td class="score">{_fmt(metrics[n]["per_question_type"][qtype][metric])}</td>'
            for n in names
        )
        rows.append(
            f'<tr><th>{html.escape(qtype)}</th><td class="score">{entry["count"]}</td>{cells}</tr>'
        )
    return (
        f"<h2>{html.escape(metric)} per question type</h2><table><tr><th>question type</th>"
        f"<th>samples</th>{head}</tr>{''.join(rows)}</table>"
    )


def _timing_table(metrics: dict[str, dict[str, Any]]) -> str:
    """Seconds per stage (start, generate, score) and records/s, one column per model."""
    names = list(metrics)
    timing = metrics[names[0]].get("timing")
    if not timing:
        return ""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><th>{html.escape(key)}</th>"
        + "".join(f'<td class="score">{_fmt(metrics[n]["timing"][key])}</td>' for n in names)
        + "</tr>"
        for key in timing
    )
    return f"<h2>Time per stage</h2><table><tr><th>stage</th>{head}</tr>{rows}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape("-" if value is None else str(value))


def write_report(
    path: str | Path,
    title: str,
    metrics: dict[str, dict[str, Any]],
    samples: dict[str, list[Sample]],
) -> Path:
    """Write the report. ``metrics`` and ``samples`` are keyed by model label (``model``, and
    ``compare`` when given); ``samples`` of every model are in the same order."""
    labels = list(samples)
    first = samples[labels[0]]
    order = sorted(range(len(first)), key=lambda i: (first[i].score, first[i].id))
    head = "".join(f"<th>{html.escape(n)}</th><th>score</th>" for n in labels)
    rows = []
    for i in order:
        s = first[i]
        images = "".join(_thumbnail(p) for p in s.images) or "(no image)"
        refs = "<br>".join(html.escape(r) for r in s.references)
        preds = "".join(_prediction_cells(samples[n][i]) for n in labels)
        about = html.escape(s.id if s.question_type is None else f"{s.question_type}, {s.id}")
        rows.append(
            f"<tr><td>{images}</td><td>{html.escape(s.question)}<br><small>{about}</small></td>"
            f"<td>{refs}</td>{preds}</tr>"
        )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<h2>Metrics</h2>{_metrics_table(metrics)}{_question_type_table(metrics)}"
        f"{_timing_table(metrics)}"
        f"<h2>Samples, worst first ({len(first)})</h2><table><tr><th>image</th><th>question</th>"
        f"<th>references</th>{head}</tr>{''.join(rows)}</table></body></html>"
    )
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path

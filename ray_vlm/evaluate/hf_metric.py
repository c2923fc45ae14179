"""Shared pieces of the Hugging Face ``evaluate`` modules under ``metric_modules/``.

Each module ``metric_modules/<name>/<name>.py`` is an ``evaluate.Metric`` that calls the plain
function of this package, so ``evaluate.load(metric_module_path("cider"))`` works offline
(``HF_HUB_OFFLINE=1``) and gives the same numbers as ``ray_vlm.evaluate.cider``. Inputs:
``predictions`` (list of strings) and ``references`` (list of lists of strings, one list per
prediction).
"""

from __future__ import annotations

from pathlib import Path

import datasets
import evaluate

METRIC_MODULES = Path(__file__).parent / "metric_modules"

INPUTS = """
Args:
    predictions: list of str, one model output per sample.
    references: list of list of str, the accepted / human texts of each sample.
"""


def metric_module_path(name: str) -> str:
    """The folder ``evaluate.load`` takes for metric ``name`` (e.g. ``"cider"``)."""
    path = METRIC_MODULES / name
    if not (path / f"{name}.py").is_file():
        known = sorted(p.name for p in METRIC_MODULES.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"no evaluate module named {name!r} in {METRIC_MODULES}; known: {known}")
    return str(path)


def metric_info(description: str) -> evaluate.MetricInfo:
    return evaluate.MetricInfo(
        description=description,
        citation="",
        inputs_description=INPUTS,
        features=datasets.Features(
            {
                "predictions": datasets.Value("string"),
                "references": datasets.Sequence(datasets.Value("string")),
            }
        ),
    )

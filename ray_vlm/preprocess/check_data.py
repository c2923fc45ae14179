"""``ray-vlm check-data``: a pre-flight check of every record before any GPU is spent.

Streams every record of every datamix source once through validation and the model's processor
(the same pipeline training uses) and reports per source: records, valid, invalid (with
``file:line`` and reason), images that fail to decode, records whose image tokens would be
truncated, texts that were shortened, and token-length percentiles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import ray

from ray_vlm.config import FinetuneConfig
from ray_vlm.preflight import check_init_model
from ray_vlm.preprocess.bad_records import ERROR_KINDS
from ray_vlm.preprocess.contract import check_model_inputs
from ray_vlm.preprocess.pipeline import build_dataset
from ray_vlm.preprocess.ray_runtime import ensure_ray
from ray_vlm.preprocess.resources import check_fits, data_demand
from ray_vlm.preprocess.shared_storage import check_shared, data_locations
from ray_vlm.preprocess.stream_plan import plan_each_once
from ray_vlm.records import select_datamix

PERCENTILES = (50, 90, 99, 100)


@dataclass
class SourceCheck:
    records: int = 0
    valid: int = 0
    invalid: int = 0
    image_errors: int = 0
    too_long: int = 0
    truncated: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    """Token-length percentiles of the valid records: ``p50``, ``p90``, ``p99``, ``p100``."""


@dataclass
class DataCheck:
    total: int
    valid: int
    invalid: int
    errors: list[dict[str, str]]
    """Every unusable record: ``{source: "file:line", reason, kind, dataset}``."""
    sources: dict[str, SourceCheck]

    def to_dict(self) -> dict:
        return asdict(self)


def check_data(cfg: FinetuneConfig) -> DataCheck:
    """Run every record of ``cfg.data.datamix`` through the pipeline (``bad_records`` as set).

    What it must reach (the processor's model, every source) is checked before Ray starts, and
    that the batch of its first records is the processor's own (``contract``); then that the
    cluster holds the pipeline and that every node sees local data."""
    check_init_model(cfg.checkpoint.init_ckpt_path)
    sources = select_datamix(cfg.data.datamix, cfg.data.datasets_yaml)
    check_model_inputs(cfg, [spec for _, spec in sources])
    data = replace(cfg.data, preprocess_workers=max(1, cfg.data.preprocess_workers))
    demand = data_demand(data)
    ensure_ray(demand.cpus)
    check_fits(demand)
    check_shared(data_locations(sources))
    dataset, report = build_dataset(
        plan_each_once(sources),
        cfg.checkpoint.init_ckpt_path,
        data,
        cfg.model.processor_kwargs,
    )
    lengths: dict[str, list[int]] = {entry.name: [] for entry, _ in sources}
    for batch in dataset.select_columns(["dataset", "num_tokens"]).iter_batches(batch_size=4096):
        for name, n in zip(batch["dataset"], batch["num_tokens"], strict=True):
            lengths[str(name)].append(int(n))
    counts = ray.get(report.counts.remote())
    errors = ray.get(report.items.remote())
    checks = {}
    for name, lens in lengths.items():
        c = counts.get(name, {})
        invalid = sum(c.get(k, 0) for k in ERROR_KINDS)
        tokens = {}  # none when no record of the source is valid
        if lens:
            pct = np.percentile(lens, PERCENTILES).round().astype(int).tolist()
            tokens = {f"p{p}": v for p, v in zip(PERCENTILES, pct, strict=True)}
        checks[name] = SourceCheck(
            records=len(lens) + invalid,
            valid=len(lens),
            invalid=invalid,
            image_errors=c.get("image", 0),
            too_long=c.get("too_long", 0),
            truncated=c.get("truncated", 0),
            tokens=tokens,
        )
    valid = sum(c.valid for c in checks.values())
    invalid = sum(c.invalid for c in checks.values())
    return DataCheck(valid + invalid, valid, invalid, errors, checks)


def format_check(check: DataCheck) -> str:
    """A human-readable report."""
    lines = [f"{'source':24s} {'records':>8s} {'valid':>8s} {'invalid':>8s} {'images':>7s} "
             f"{'too long':>8s} {'cut':>6s}  tokens p50/p90/p99/max"]  # fmt: skip
    for name, c in check.sources.items():
        tokens = "/".join(str(v) for v in c.tokens.values()) or "-"
        lines.append(
            f"{name:24s} {c.records:8d} {c.valid:8d} {c.invalid:8d} {c.image_errors:7d} "
            f"{c.too_long:8d} {c.truncated:6d}  {tokens}"
        )
    lines.append(f"total {check.total}, valid {check.valid}, invalid {check.invalid}")
    lines += [f"  {e['source']}: [{e['kind']}] {e['reason']}" for e in check.errors]
    return "\n".join(lines)

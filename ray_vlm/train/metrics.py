"""Training progress in ``dump_dir`` (any ``ray_vlm.storage.Location``: a local path, a shared
filesystem or a bucket): ``metrics.jsonl``, ``train.log``, ``loss.png`` (and, when
``logging.record_ids``, ``record_ids.jsonl``).

Rank 0 owns a ``RunLog``. ``metrics.jsonl`` has one JSON object per logged step:
``{"step", "loss", "lr", "grad_norm", "samples_per_s", "tokens_per_s"}`` (``loss`` is the step's
training loss: the mean cross-entropy over every answer token of the global batch, see
``loss.py``; ``grad_norm`` is the global norm before clipping, ``grad_norm.py``; the rates count
real, unpadded examples and tokens of all ranks since the previous line, time spent validating
left out), and, when validation is on (``eval``), one row per validation
``{"step", "val_loss", "val_examples", "val_tokens"}`` (``validation.py``; after that step's
training row if it has one); every row also goes to the run's TensorBoard / MLflow trackers when they are on
(``tracking.py``). ``loss.png`` shows the training loss and the validation losses as points. ``record_ids.jsonl`` has one
object per step, ``{"step", "ranks": [[ids of micro-batch 0, ...] per rank]}``. On resume, lines
past the resumed step are dropped first, so a restarted stretch is not counted twice.
``train.log`` gets a readable progress line per logged step and the run's notes; each line is
also printed (the driver follows ``train.log`` with a progress bar: ``progress.py``).
"""

from __future__ import annotations

import io
import json
import os
import re
import sys

from ray_vlm.config.secrets import mask_text
from ray_vlm.storage import Location
from ray_vlm.train.tracking import Trackers

METRICS = "metrics.jsonl"
RECORD_IDS = "record_ids.jsonl"
TRAIN_LOG = "train.log"
LOSS_PNG = "loss.png"


PROGRESS = re.compile(r"^step (\d+)/\d+  loss (\S+)")


def parse_progress(line: str) -> tuple[int, float] | None:
    """``(step, loss)`` of a progress line ``RunLog.metrics`` wrote, else ``None``."""
    match = PROGRESS.match(line)
    return (int(match[1]), float(match[2])) if match else None


def read_metrics(dump_dir: str | os.PathLike | Location, name: str = METRICS) -> list[dict]:
    """Rows of ``metrics.jsonl`` (or another per-step JSON-lines file of the run). Lines are
    appended, so a crash (or a full disk) mid-write can cut the last one: it is dropped with a
    warning on stderr (``RunLog`` rewrites the file without it when the run resumes)."""
    path = Location.of(dump_dir) / name
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = [json.loads(line) for line in lines[:-1]]
    try:
        rows += [json.loads(line) for line in lines[-1:]]
    except json.JSONDecodeError:
        print(f"{path}: its last line is cut off (a crash mid-write?); dropped", file=sys.stderr)
    return rows


class RunLog:
    def __init__(
        self,
        dump_dir: str | os.PathLike | Location,
        resumed_step: int,
        trackers: Trackers | None = None,
    ) -> None:
        self.dump_dir = Location.of(dump_dir)
        self.trackers = trackers
        for name in (METRICS, RECORD_IDS):
            kept = [m for m in read_metrics(self.dump_dir, name) if m["step"] <= resumed_step]
            (self.dump_dir / name).write_text("".join(json.dumps(m) + "\n" for m in kept))

    def note(self, text: str) -> None:
        """A line for ``train.log`` and stdout, credentials in URIs masked (``config.secrets``)."""
        text = mask_text(text)
        print(text, flush=True)
        (self.dump_dir / TRAIN_LOG).append_text(text + "\n")

    def record_ids(self, step: int, ranks: list) -> None:
        """The record ids each rank's micro-batches held at ``step``."""
        (self.dump_dir / RECORD_IDS).append_text(json.dumps({"step": step, "ranks": ranks}) + "\n")

    def metrics(self, row: dict, steps: int) -> None:
        """One line of ``metrics.jsonl`` (and of the trackers) and a progress line."""
        (self.dump_dir / METRICS).append_text(json.dumps(row) + "\n")
        if self.trackers is not None:
            self.trackers.log(row, row["step"])
        self.note(
            f"step {row['step']}/{steps}  loss {row['loss']:.4f}  lr {row['lr']:.2e}  "
            f"grad_norm {row['grad_norm']:.3f}  {row['samples_per_s']:.1f} samples/s  "
            f"{row['tokens_per_s']:.0f} tokens/s"
        )

    def validation(self, step: int, row: dict | None, steps: int) -> None:
        """A validation row (``validation.py``) in ``metrics.jsonl`` and the trackers, and a line
        for ``train.log``; ``None``: the validation records held no answer token."""
        if row is None:
            self.note(f"validation at step {step}/{steps}: no answer tokens in eval.datamix")
            return
        (self.dump_dir / METRICS).append_text(json.dumps(row) + "\n")
        if self.trackers is not None:
            self.trackers.log(row, step)
        self.note(
            f"validation at step {step}/{steps}: val_loss {row['val_loss']:.4f} over "
            f"{row['val_examples']} examples ({row['val_tokens']} answer tokens)"
        )

    def close(self) -> None:
        """The end of training: the trackers finish."""
        if self.trackers is not None:
            self.trackers.close()


def plot_loss(dump_dir: str | os.PathLike | Location) -> Location | None:
    """``loss.png``: training loss (a line) and validation loss (points) against step from
    ``metrics.jsonl``; ``None`` when nothing was logged."""
    dump_dir = Location.of(dump_dir)
    rows = read_metrics(dump_dir)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="training loss")
    if val:
        steps, losses = [r["step"] for r in val], [r["val_loss"] for r in val]
        ax.plot(steps, losses, "o--", label="validation loss")
        ax.legend()
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    out = dump_dir / LOSS_PNG
    out.write_bytes(png.getvalue())
    return out

"""Every benchmark, run one after another, recorded, and the README's table made from the record.

Run: ``make bench`` (= ``.venv/bin/python benchmarks/suite.py run`` then ``... table``) on an
otherwise idle machine.

- ``run [NAME ...]``: runs each benchmark script (without names: all but the GPU-only ones,
  ``Benchmark.gpu``) at full size (``BENCHMARKS[name].args``), one after another, its output
  shown as it goes; appends its last line (one JSON object) to ``benchmarks/results.jsonl`` as
  ``{"benchmark", "date", "git_rev", "machine", "seconds", "args", "result"}`` (``machine``:
  ``nproc``, ``mem_gib`` and the load average before it ran).
  A script that fails is reported and the others still run; the exit status is then 1.
- ``table``: rewrites the table between ``TABLE_START`` and ``TABLE_END`` in ``README.md`` from
  the latest record of each benchmark in ``results.jsonl``.

``BENCHMARKS`` is the one place that says which fields of a script's JSON line the README reads
(``Benchmark.result``, a format string over them); ``tests/test_benchmarks.py`` runs every script
with ``--smoke`` and requires each of those fields in its last line, and checks that the README's
table is the one ``table`` makes from ``results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results.jsonl"
README = REPO / "README.md"
TABLE_START = "<!-- benchmark table: made by `benchmarks/suite.py table` from results.jsonl -->"
TABLE_END = "<!-- end of benchmark table -->"


@dataclass(frozen=True)
class Benchmark:
    what: str
    """What it compares (a README cell)."""
    result: str
    """A format string over the fields of the script's JSON line: the README's result cell."""
    target: str
    smoke_s: float
    """Its ``--smoke`` wall time alone on the idle 2-core machine (2026-12-05): the order the CI
    test starts the smoke runs in, longest first."""
    args: tuple[str, ...] = ()
    """The full-size run's arguments (``make bench``)."""
    script: str = ""
    """``benchmarks/<script>.py`` when not the benchmark's own name (one script, two settings)."""
    gpu: bool = False
    """Measured only on a CUDA GPU (the ``make test-gpu`` machine): ``run`` without names leaves it
    out (name it there: ``suite.py run gpu_step``), and until a result is recorded its README row
    says so instead of a figure; its ``--smoke`` runs on CPU in CI like every other."""

    def fields(self) -> list[str]:
        """The JSON fields ``result`` reads."""
        return list(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(self.result) if f))


# fmt: off
BENCHMARKS: dict[str, Benchmark] = {
    "data_throughput": Benchmark(
        "Ray Data pipeline (2 processor actors) vs a single-process loop doing the same work "
        "(384x384 PNGs, 336-px CLIP-style LLaVA processor, 1,600 records, steady state, median "
        "of 3 comparisons); padding share with length grouping vs stream order",
        "{ray_samples_per_s} vs {loop_samples_per_s} samples/s, **ratio {ratio}** (runs: "
        "{ratios}); padding share **{padding_share}** vs {padding_share_naive}",
        "ratio >= 1.7, padding <= 0.10",
        22,
    ),
    "serve_throughput": Benchmark(
        "requests/s at concurrency 32 with dynamic batching (`max_batch_size` 32, "
        "`batch_wait_timeout_s` 0.25) vs without, HTTP on loopback, the demo LLaVA",
        "{batched_rps} vs {unbatched_rps} rps, **ratio {ratio}**, p50 {p50_ms} ms, "
        "p99 {p99_ms} ms, {errors} errors",
        "ratio >= 4, 0 errors",
        37,
    ),
    "train_throughput": Benchmark(
        "`train(cfg)` with 1 worker (Ray Train + DeepSpeed ZeRO-3, fp32) vs a bare fused-AdamW "
        "loop, 31M-param LLaVA, 224-px images (256 image tokens); per-rank param + optimizer "
        "bytes with 2 workers vs 1",
        "{ray_ds_samples_per_s} vs {bare_samples_per_s} samples/s, **ratio {ratio}**; "
        "**bytes ratio {zero3_rank_bytes_ratio}** ({rank_bytes_2_workers:,} vs "
        "{rank_bytes_1_worker:,} bytes per rank)",
        "ratio >= 0.8, bytes ratio <= 0.55",
        75,
    ),
    "learning_parity": Benchmark(
        "`train(cfg)` (2 Ray Train workers, ZeRO-3, the demo config) vs a bare single-process "
        "loop fed exactly the records `train` logged per step, same initial weights; losses "
        "averaged over 10-step windows",
        "{steps} steps: **max_rel_loss_diff {max_rel_loss_diff}**, final loss "
        "{final_loss_ours} vs {final_loss_bare} (first {first_loss_ours} vs {first_loss_bare})",
        "<= 0.02 over >= 200 steps",
        45,
        ("--steps", "300"),
    ),
    "learning_parity_qwen2_5_vl": Benchmark(
        "`learning_parity.py` on the Qwen2.5-VL stand-in (its processor: 196 image tokens per "
        "demo image, flattened patches, `image_grid_thw`, M-RoPE) in place of the demo LLaVA; the "
        "bare loop's batches made by the processor itself",
        "{model}, {steps} steps: **max_rel_loss_diff {max_rel_loss_diff}**, final loss "
        "{final_loss_ours} vs {final_loss_bare} (first {first_loss_ours} vs {first_loss_bare})",
        "<= 0.02 over >= 200 steps",
        60,
        ("--model", "qwen2_5_vl", "--steps", "200"),
        script="learning_parity",
    ),
    "memory_scale": Benchmark(
        "host memory of ZeRO-3 loading (2 CPU workers, bf16, LoRA) and of `ray-vlm "
        "consolidate`, against the model's fp32 size (1.74 B params; fixed ~1.2 GB per process "
        "included)",
        "{params:,} params: rank 1 peak / fp32 model **{load_rss_ratio_nonzero_rank}**, "
        "consolidate peak / bytes written **{consolidate_rss_ratio}** ({written_gb} GB written)",
        "<= 0.6 and <= 1.3",
        57,
        ("--layers", "36", "--skip-old"),
    ),
    "eval_throughput": Benchmark(
        "`evaluate()` (one replica of 1 CPU, batches of 32, Serve and scoring included end to "
        "end) vs a plain single-process `processor` + `generate` loop; the demo LLaVA on 3,000 "
        "VQA records (overhead-bound) and a 31M-param LLaVA at 224 px on 1,000 (compute-bound)",
        "small **{ratio_steady_small}** ({ours_steady_small} vs {plain_steady_small} records/s; "
        "split read once {ratio_steady_small_once}); large **{ratio_steady_large}**, end to end "
        "**{ratio_end_to_end_large}**; identical predictions: {identical_predictions}",
        "steady >= 0.5 small, >= 0.8 large, end to end >= 0.6 large, identical predictions",
        54,
    ),
    "gpu_step": Benchmark(
        "`ray_vlm.train.local_run` under `torchrun` (no Ray, 1 process) vs a bare PyTorch loop "
        "on the same batches: PaliGemma-2 3B pt-224's architecture at random init, one GPU, the "
        "shipped `paligemma_prescription.yaml` (attention only, float16-held frozen weights, "
        "fp32, SGD, gradient checkpointing), 224 px, batch 8; MFU over the GPU's FP32 peak",
        "{samples_per_s} vs {bare_samples_per_s} samples/s, **ratio {ratio}**, **MFU {mfu}** "
        "(bare {bare_mfu}) of {peak_tflops} TFLOPS, {device}",
        "ratio >= 0.9, MFU reported",
        16,
        gpu=True,
    ),
    "metric_speed": Benchmark(
        "our CIDEr-D vs `pycocoevalcap`'s scorer on the same tokenised 20,000 predictions x 5 "
        "references, median of 5 repeats (CPU time)",
        "{ours_s} s vs {reference_s} s, **speedup {speedup}** (repeats: {speedups}), abs diff "
        "{abs_diff:.1e}",
        "speedup >= 5, diff <= 1e-6",
        1.5,
    ),
}
# fmt: on


def _machine() -> dict:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "nproc": os.cpu_count(),
        "mem_gib": round(pages / 2**30, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def _git_rev() -> str:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return rev.stdout.decode().strip() + ("+dirty" if dirty else "")


def last_json_line(output: str) -> dict:
    """The JSON object a benchmark printed last (``ValueError`` when there is none)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        raise ValueError("no output")
    result = json.loads(lines[-1])
    if not isinstance(result, dict):
        raise ValueError(f"last line is not a JSON object: {lines[-1][:200]}")
    return result


def missing_fields(name: str, result: dict) -> list[str]:
    """The fields ``BENCHMARKS[name].result`` reads that ``result`` lacks."""
    return [f for f in BENCHMARKS[name].fields() if f not in result]


def script(name: str) -> str:
    """The script benchmark ``name`` runs (``benchmarks/<script>.py``)."""
    return BENCHMARKS[name].script or name


def run_one(name: str, extra: tuple[str, ...] = ()) -> tuple[dict, float]:
    """Run benchmark ``name``'s script with ``extra`` args, echoing its output; (result,
    seconds)."""
    argv = [sys.executable, "-u", str(HERE / f"{script(name)}.py"), *extra]
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        lines.append(line)
    if proc.wait():
        raise RuntimeError(f"{name} exited {proc.returncode}")
    return last_json_line("".join(lines)), time.monotonic() - start


def run(names: list[str]) -> int:
    failed = []
    for name in names or [n for n, bench in BENCHMARKS.items() if not bench.gpu]:
        bench, machine = BENCHMARKS[name], _machine()
        print(f"== {name} {' '.join(bench.args)}", flush=True)
        try:
            result, seconds = run_one(name, bench.args)
        except (RuntimeError, ValueError) as err:
            print(f"== {name} failed: {err}", flush=True)
            failed.append(name)
            continue
        record = {
            "benchmark": name,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "git_rev": _git_rev(),
            "machine": machine,
            "seconds": round(seconds, 1),
            "args": list(bench.args),
            "result": result,
        }
        with RESULTS.open("a") as f:
            f.write(json.dumps(record) + "\n")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def latest(path: Path = RESULTS) -> dict[str, dict]:
    """The last record of each benchmark in ``path``."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["benchmark"]: r for r in records}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(records: dict[str, dict]) -> str:
    """The README's benchmark table (markers included) for ``records``."""
    rows = [
        TABLE_START,
        "| benchmark | what it compares | result | target | measured |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, bench in BENCHMARKS.items():
        record = records.get(name)
        if record is None:
            why = ": needs a GPU (the `make test-gpu` machine)" if bench.gpu else ""
            rows.append(
                f"| `{script(name)}.py` | {_cell(bench.what)} | not run yet{why} | "
                f"{bench.target} | |"
            )
            continue
        machine = record["machine"]
        measured = (
            f"{record['date']}, `{record['git_rev']}`, {machine['nproc']} cores / "
            f"{machine['mem_gib']:g} GiB, load {machine['loadavg'][0]:g}, {record['seconds']:.0f} s"
        )
        command = " ".join([f"{script(name)}.py", *record["args"]])
        result = bench.result.format(**record["result"])
        rows.append(
            f"| `{command}` | {_cell(bench.what)} | {_cell(result)} | {bench.target} | {measured} |"
        )
    rows.append(TABLE_END)
    return "\n".join(rows)


def readme_with_table(readme: str, records: dict[str, dict]) -> str:
    head, rest = readme.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    return head + table(records) + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run").add_argument("names", nargs="*", help=", ".join(BENCHMARKS))
    sub.add_parser("table")
    args = parser.parse_args()
    if args.command == "run":
        unknown = set(args.names) - set(BENCHMARKS)
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        sys.exit(run(args.names))
    README.write_text(readme_with_table(README.read_text(), latest()))


if __name__ == "__main__":
    main()

"""Fine-tune without Ray: ``python -m torch.distributed.run --nproc-per-node N -m
ray_vlm.train.local_run config=<yaml> key=value ...``.

The same recipe as ``train(cfg)`` (``loop.Recipe``), run by ``torchrun``'s processes with a
``LocalSession``: NCCL on CUDA (each process on GPU ``LOCAL_RANK``), gloo on CPU. Rank 0 resolves
the config and plans the data (``run_start``) and hands both to the other ranks; it holds
``dump_dir``'s lease (``lease.py``) from before that until the run ends. Used by the GPU
checks (``tests/gpu``, ``make test-gpu``) on machines without Ray, and for one-node debugging;
``ray_vlm.train.trainer`` is the way to train on a cluster.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from dataclasses import replace
from datetime import timedelta

import torch
import torch.distributed as dist

from ray_vlm.config import FinetuneConfig, UserError, load_config
from ray_vlm.config.secrets import install_log_masking, say
from ray_vlm.preprocess.bad_records import left_out_lines
from ray_vlm.train.lease import Lease
from ray_vlm.train.local_session import LocalSession
from ray_vlm.train.loop import Recipe
from ray_vlm.train.metrics import plot_loss
from ray_vlm.train.run_start import RunStart, start_run


def _init_process_group(timeout_s: int) -> None:
    timeout = timedelta(seconds=timeout_s)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl", timeout=timeout)
    else:
        dist.init_process_group("gloo", timeout=timeout)


def run(cfg: FinetuneConfig) -> None:
    """Every ``torchrun`` process: train (or resume) the run ``cfg`` describes, on as many workers
    as ``torchrun`` started, on GPU where there is one."""
    cfg = replace(
        cfg,
        distributed=replace(
            cfg.distributed, num_workers=dist.get_world_size(), use_gpu=torch.cuda.is_available()
        ),
    )
    with contextlib.ExitStack() as lease:  # rank 0 holds dump_dir's lease for the whole run
        start: list[object] = [None]
        if dist.get_rank() == 0:
            try:
                lease.enter_context(Lease.take(cfg.dump_dir))
                start[0] = start_run(cfg)
            except UserError as err:  # every rank ends with it, none waits for the others
                start[0] = err
        dist.broadcast_object_list(start, src=0)
        if isinstance(start[0], UserError):
            raise start[0]
        if start[0].data is not None:
            _train(start[0])


def _train(run_start: RunStart) -> None:
    """Every process: the recipe from where ``run_start`` stands; rank 0 reports the end."""
    session = LocalSession(run_start.cfg)
    Recipe(run_start.cfg, run_start.data, session).train()
    left = [None] * session.world
    dist.all_gather_object(left, dict(session.left_out))
    if session.rank == 0:
        plot_loss(run_start.cfg.dump_dir)
        total: dict[str, dict[str, int]] = {}
        for counts in left:
            for (dataset, kind), n in counts.items():
                total.setdefault(dataset, {})[kind] = total.get(dataset, {}).get(kind, 0) + n
        for line in left_out_lines(total):
            print(line, flush=True)


def _refused(err: UserError) -> int:
    say(f"ray_vlm.train.local_run: {err}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    install_log_masking()
    try:
        cfg = load_config(FinetuneConfig, sys.argv[1:] if argv is None else argv)
    except UserError as err:
        return _refused(err)
    _init_process_group(cfg.distributed.timeout_s)
    try:
        run(cfg)
        dist.barrier()  # every rank done with the run's collectives before any tears down
    except UserError as err:
        return _refused(err)
    finally:
        gc.collect()  # the run's engine and its pending gloo work go while the groups still exist
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not through interpreter finalization: gloo objects DeepSpeed's module state still holds
    # would be destroyed there, and a rank once aborted so ("terminate called without an active
    # exception", SIGABRT, after its last checkpoint; pytorch/pytorch#179291 is the same abort).
    os._exit(code)

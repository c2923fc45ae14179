"""The driver's view of a run while its workers train: ``train.log`` followed live.

``follow(train_log, steps, done)`` shows a tqdm bar of optimizer steps (with the last logged loss)
moved by the progress lines rank 0 writes (``metrics.RunLog.metrics``), and prints every other
line of the log (set-up, notes, resumes) above the bar. The log is polled every second locally,
every 5 s in a bucket; workers' own stdout stays in Ray.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from tqdm import tqdm

from ray_vlm.storage import Location
from ray_vlm.train.metrics import parse_progress


@contextlib.contextmanager
def follow(train_log: Location, steps: int, done: int = 0) -> Iterator[None]:
    """Follow ``train_log`` while the block runs; ``done``: steps finished before it starts."""
    finished = threading.Event()
    offset = train_log.size() if train_log.exists() else 0
    period_s = 1.0 if train_log.is_local else 5.0
    bar = tqdm(total=steps, initial=done, desc="training", unit="step", dynamic_ncols=True)

    def pump() -> None:
        nonlocal offset
        while True:
            last = finished.wait(period_s)
            size = train_log.size() if train_log.exists() else 0
            if size > offset:
                text = train_log.read_range(offset, size).decode("utf-8", "replace")
                offset = size
                for line in text.splitlines():
                    progress = parse_progress(line)
                    if progress is None:
                        bar.write(line)
                    else:
                        bar.update(progress[0] - bar.n)
                        bar.set_postfix(loss=f"{progress[1]:.4f}")
            if last:
                return

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        finished.set()
        thread.join()
        bar.close()

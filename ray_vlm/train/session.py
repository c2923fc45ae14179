"""What the training recipe needs from whatever runs its workers, and nothing else.

``Recipe`` (``loop.py``) runs on Ray Train workers (``ray_session.RaySession``) or on processes
``torchrun`` started, without Ray (``local_session.LocalSession``: the GPU checks of
``tests/gpu``). Either way ``torch.distributed`` is initialised before the recipe starts; a
session tells the recipe its rank, hands it the checkpoint to resume from, turns plan pieces into
encoded rows, and publishes each checkpoint once every rank wrote its part.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from ray_vlm.preprocess.stream_plan import Chunk


class Session(Protocol):
    rank: int
    world: int

    def restored(self) -> AbstractContextManager[Path | None]:
        """The checkpoint to resume from as a local folder while the block runs (``None``:
        start from the initial weights)."""

    def rows(self, pieces: list[Chunk]) -> Iterable[dict[str, Any]]:
        """The encoded rows (``encode.ROW_COLUMNS``) of ``pieces``, in plan order."""

    def report(self, metrics: dict, folder: Path, name: str) -> None:
        """Publish checkpoint ``name``: every rank calls this with the folder it wrote its part
        into; the checkpoint counts once every rank's part is stored."""

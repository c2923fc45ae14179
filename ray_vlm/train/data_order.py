"""Which planned records each rank trains on, in which order, and where a run stands in them.

The run's data plan (``preprocess.stream_plan``) numbers every planned record with a *position*:
0, 1, 2, ... in plan order (a record of a small source cycled twice has two positions).

``DataOrder(remaining, world)`` deals the positions still to train out to the ranks in turn:
rank ``r``'s *sequence* is ``remaining[r], remaining[r + world], ...`` (``remaining`` is kept as
sorted ``[start, end)`` ranges). A fresh run's ``remaining`` is the whole plan.

``RankPosition(next_index, window, done)`` is where a rank stands in its sequence at a
checkpoint: the index of the first entry of the length-grouped window it is in (or of the next
window), that window's number (it seeds the window's batch order) and the positions of the window
it has already trained on. The rank's data pipeline restarts at ``next_index``, rebuilds the same
window from the same records and skips those batches (``train.batches``): a resumed run —
a restarted worker group, or the same command run again — continues exactly where it stood,
nothing repeated, nothing skipped, in the order an uninterrupted run takes.

Sequences cannot carry over to another world size: ``reshard`` drops every position some rank
trained on (its sequence before ``next_index``, and its ``done``) and deals the rest out anew, in
plan order, so each record is still trained on exactly once.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

Ranges = tuple[tuple[int, int], ...]


def as_ranges(positions: Iterable[int]) -> Ranges:
    """Sorted ``[start, end)`` ranges covering the (sorted, distinct) ``positions``."""
    out: list[list[int]] = []
    for p in positions:
        if out and out[-1][1] == p:
            out[-1][1] = p + 1
        else:
            out.append([p, p + 1])
    return tuple((a, b) for a, b in out)


def _expand(ranges: Ranges) -> Iterator[int]:
    for start, end in ranges:
        yield from range(start, end)


@dataclass(frozen=True)
class RankPosition:
    next_index: int = 0
    """Index in the rank's sequence where its current (or next) window starts."""
    window: int = 0
    """Number of that window in the rank's stream since the order was dealt (seeds its batches)."""
    done: tuple[int, ...] = ()
    """Positions of the window the rank has trained on (always whole batches)."""


@dataclass(frozen=True)
class DataOrder:
    remaining: Ranges
    world: int
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _before: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        before, total = [], 0
        for start, end in self.remaining:
            before.append(total)
            total += end - start
        object.__setattr__(self, "_starts", tuple(s for s, _ in self.remaining))
        object.__setattr__(self, "_before", tuple(before))

    @classmethod
    def fresh(cls, planned: int, world: int) -> DataOrder:
        """Positions ``0 .. planned - 1`` dealt to ``world`` ranks."""
        return cls(((0, planned),) if planned else (), world)

    @property
    def total(self) -> int:
        return sum(end - start for start, end in self.remaining)

    @property
    def end(self) -> int:
        """One past the last position dealt (0 when nothing is)."""
        return self.remaining[-1][1] if self.remaining else 0

    def length(self, rank: int) -> int:
        """Entries in ``rank``'s sequence."""
        return max(0, (self.total - rank + self.world - 1) // self.world)

    def _nth(self, n: int) -> int:
        """The ``n``-th position of ``remaining``."""
        k = bisect.bisect_right(self._before, n) - 1
        return self.remaining[k][0] + n - self._before[k]

    def _rank_of_nth(self, position: int) -> int:
        k = bisect.bisect_right(self._starts, position) - 1
        start, end = self.remaining[k]
        if not start <= position < end:
            raise ValueError(f"position {position} is not dealt by this order")
        return self._before[k] + position - start

    def sequence(self, rank: int, start: int = 0) -> Iterator[int]:
        """``rank``'s positions from index ``start`` on, in order."""
        for n in range(rank + start * self.world, self.total, self.world):
            yield self._nth(n)

    def index(self, rank: int, position: int) -> int:
        """Index of ``position`` in ``rank``'s sequence (``ValueError`` if it is not there)."""
        n = self._rank_of_nth(position)
        if n % self.world != rank:
            raise ValueError(f"position {position} belongs to rank {n % self.world}, not {rank}")
        return n // self.world

    def extended(self, end: int) -> DataOrder:
        """The same order with the new plan positions ``self.end .. end - 1`` dealt after it."""
        if end <= self.end:
            return self
        return DataOrder((*self.remaining, (self.end, end)), self.world)

    def left(self, positions: dict[int, RankPosition]) -> int:
        """Positions not yet trained on, given every rank's position."""
        trained = sum(min(p.next_index, self.length(r)) + len(p.done) for r, p in positions.items())
        return self.total - trained

    def reshard(self, positions: dict[int, RankPosition], world: int) -> DataOrder:
        """The positions no rank trained on, dealt to ``world`` ranks in plan order."""
        trained: set[int] = set()
        for rank, pos in positions.items():
            trained.update(pos.done)
            trained.update(_prefix(self, rank, pos.next_index))
        return DataOrder(as_ranges(p for p in _expand(self.remaining) if p not in trained), world)

    def to_dict(self) -> dict:
        return {"remaining": [list(r) for r in self.remaining], "world": self.world}

    @classmethod
    def from_dict(cls, data: dict) -> DataOrder:
        return cls(tuple((int(a), int(b)) for a, b in data["remaining"]), int(data["world"]))


def _prefix(order: DataOrder, rank: int, count: int) -> Iterator[int]:
    """The first ``count`` positions of ``rank``'s sequence."""
    for i, position in enumerate(order.sequence(rank)):
        if i >= count:
            return
        yield position

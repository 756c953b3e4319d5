"""Length-bucketed batching by padded frames, sharded evenly across ranks, resumable mid-epoch.

Generic over ``(id, length)`` pairs (length in frames, tokens, samples: any unit ``max_frames`` uses).

* Batches are built once: items sorted by (length, id) and packed greedily while
  ``longest_in_batch * n_items <= max_frames`` (the padded size a collate produces), optionally also
  capped at ``max_items``. With ``max_frames == 0``, batches are ``batch_size`` consecutive items of
  the sorted order. Sorting first keeps padding small. An item longer than ``max_frames`` gets a
  batch of its own (logged), since dropping data silently is worse.
* Each epoch shuffles the ORDER of batches with ``random.Random`` seeded from (seed, epoch): the same
  on every rank and every rerun, never touching the global RNG (exact resume).
* Ranks take batches ``r, r + W, r + 2W, ...``. So that every rank gets the same number of batches
  (DDP needs that), the batch list is first made a multiple of W by splitting the batches with the
  most items in two (both halves still respect the bound), so every id is still seen exactly once
  per epoch. Only when nothing can be split (fewer items than ranks) are batches repeated from the
  start of the epoch's order: then a few ids are seen twice in that epoch.
* ``for_epoch(e)`` returns a sequence with ``skip(n)``: the trainer resumes mid-epoch by skipping the
  batches already consumed, without loading them.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterator, Sequence

from audiorl.log import get_logger

logger = get_logger(__name__)


class EpochBatches:
    """One rank's batches (lists of ids) for one epoch, from position ``start``."""

    def __init__(self, batches: list[list[str]], start: int = 0):
        self.batches, self.start = batches, start

    def __iter__(self) -> Iterator[list[str]]:
        return iter(self.batches[self.start:])

    def __len__(self) -> int:
        return max(0, len(self.batches) - self.start)

    def skip(self, n: int) -> "EpochBatches":
        return EpochBatches(self.batches, self.start + n)


class MappedBatches:
    """``fn`` applied lazily to each batch of ids (e.g. load + collate), keeping ``skip`` and ``len``."""

    def __init__(self, base: Any, fn: Callable[[Any], Any]):
        self.base, self.fn = base, fn

    def __iter__(self) -> Iterator[Any]:
        return (self.fn(b) for b in self.base)

    def __len__(self) -> int:
        return len(self.base)

    def skip(self, n: int) -> "MappedBatches":
        return MappedBatches(self.base.skip(n), self.fn)


def map_batches(base: Any, fn: Callable[[Any], Any]) -> MappedBatches:
    return MappedBatches(base, fn)


def pack_by_frames(items: Sequence[tuple[str, int]], max_frames: int = 0, batch_size: int = 0,
                   max_items: int = 0) -> list[list[str]]:
    """Sorted-by-length greedy packing; see the module docstring. Deterministic."""
    if max_frames <= 0 and batch_size <= 0:
        raise ValueError("pack_by_frames needs max_frames > 0 or batch_size > 0")
    ordered = sorted(items, key=lambda x: (x[1], x[0]))
    batches: list[list[str]] = []
    cur: list[str] = []
    too_long = 0
    for uid, length in ordered:
        if max_frames > 0:
            # Sorted ascending, so the new item is the longest: padded size = length * (n + 1).
            full = length * (len(cur) + 1) > max_frames or (max_items > 0 and len(cur) >= max_items)
            too_long += length > max_frames
        else:
            full = len(cur) >= batch_size
        if cur and full:
            batches.append(cur)
            cur = []
        cur.append(uid)
    if cur:
        batches.append(cur)
    if too_long:
        logger.warning("%d items are longer than max_frames=%d; each got a batch of its own (raise max_frames "
                       "or filter long items)", too_long, max_frames)
    return batches


def split_to_multiple(batches: list[list[str]], world_size: int) -> list[list[str]]:
    """Split the largest batches in two until len(batches) % world_size == 0, where possible."""
    batches = [list(b) for b in batches]
    while len(batches) % world_size:
        i = max(range(len(batches)), key=lambda j: (len(batches[j]), -j))
        if len(batches[i]) < 2:
            break  # nothing left to split: for_epoch pads by repeating
        b = batches[i]
        batches[i:i + 1] = [b[: len(b) // 2], b[len(b) // 2:]]
    return batches


class LengthBucketSampler:
    """Batches of ids for (epoch, rank): ``sampler.for_epoch(epoch)``; ``len(sampler)`` per rank."""

    def __init__(self, items: Sequence[tuple[str, int]], max_frames: int = 0, batch_size: int = 0,
                 max_items: int = 0, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if not items:
            raise ValueError("LengthBucketSampler: no items")
        seen: set[str] = set()
        for u, _ in items:
            if u in seen:
                raise ValueError(f"LengthBucketSampler: duplicate id {u!r}: ids must be unique")
            seen.add(u)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
        self.lengths = dict(items)
        self.seed, self.shuffle, self.rank, self.world_size = seed, shuffle, rank, world_size
        self.batches = split_to_multiple(pack_by_frames(items, max_frames, batch_size, max_items), world_size)

    def __len__(self) -> int:
        return -(-len(self.batches) // self.world_size)

    def global_order(self, epoch: int) -> list[list[str]]:
        """All ranks' batches for ``epoch`` in order, padded to a multiple of world_size."""
        order = list(range(len(self.batches)))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        pad = -len(order) % self.world_size
        order += (order * (pad // max(1, len(order)) + 1))[:pad]  # repeat only when splitting could not help
        return [self.batches[i] for i in order]

    def for_epoch(self, epoch: int) -> EpochBatches:
        return EpochBatches(self.global_order(epoch)[self.rank::self.world_size])

    def padding_efficiency(self) -> float:
        """Real frames / padded frames over all batches (1.0 = no padding)."""
        real = sum(self.lengths[u] for b in self.batches for u in b)
        padded = sum(max(self.lengths[u] for u in b) * len(b) for b in self.batches)
        return real / max(1, padded)

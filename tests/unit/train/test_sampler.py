"""audiorl.data.sampler: every id once per epoch, frame bound, determinism, equal shards, resume."""

from __future__ import annotations

import collections
import random

import pytest

from audiorl.data.sampler import LengthBucketSampler, map_batches, pack_by_frames


def _items(n=203, seed=0):
    rng = random.Random(seed)
    return [(f"utt{i:04d}", rng.randint(20, 400)) for i in range(n)]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_every_id_exactly_once_per_epoch_and_equal_shards(world_size):
    items = _items()
    shards = [LengthBucketSampler(items, max_frames=1600, seed=3, rank=r, world_size=world_size).for_epoch(2)
              for r in range(world_size)]
    assert len({len(s) for s in shards}) == 1  # every rank the same number of batches
    seen = collections.Counter(u for s in shards for b in s for u in b)
    assert set(seen) == {u for u, _ in items} and set(seen.values()) == {1}


def test_frames_bound_and_sorted_buckets():
    items = _items()
    lengths = dict(items)
    s = LengthBucketSampler(items, max_frames=1600, seed=0)
    for b in s.batches:
        assert max(lengths[u] for u in b) * len(b) <= 1600
    assert s.padding_efficiency() > 0.9  # sorting by length keeps padding small
    assert all(len(b) <= 4 for b in pack_by_frames(items, max_frames=10_000, max_items=4))


def test_too_long_item_gets_its_own_batch():
    batches = pack_by_frames([("a", 10), ("b", 5000), ("c", 12)], max_frames=100)
    assert ["b"] in batches and sorted(u for b in batches for u in b) == ["a", "b", "c"]


def test_deterministic_and_reshuffled_per_epoch():
    items = _items()
    a = LengthBucketSampler(items, max_frames=1600, seed=7)
    b = LengthBucketSampler(list(reversed(items)), max_frames=1600, seed=7)  # input order is irrelevant
    assert list(a.for_epoch(0)) == list(b.for_epoch(0))
    assert list(a.for_epoch(0)) != list(a.for_epoch(1))
    assert list(a.for_epoch(0)) != list(LengthBucketSampler(items, max_frames=1600, seed=8).for_epoch(0))
    assert sorted(map(tuple, a.for_epoch(0))) == sorted(map(tuple, a.for_epoch(1)))  # same buckets
    unshuffled = LengthBucketSampler(items, max_frames=1600, shuffle=False)
    assert list(unshuffled.for_epoch(0)) == list(unshuffled.for_epoch(5))


def test_skip_resumes_mid_epoch_and_survives_map():
    s = LengthBucketSampler(_items(), batch_size=8, seed=1)
    full = list(s.for_epoch(4))
    assert list(s.for_epoch(4).skip(5)) == full[5:] and len(s.for_epoch(4).skip(5)) == len(full) - 5
    mapped = map_batches(s.for_epoch(4), len)
    assert list(mapped.skip(3)) == [len(b) for b in full[3:]]


def test_fewer_items_than_ranks_pads_by_repeating():
    shards = [LengthBucketSampler([("a", 3), ("b", 4)], batch_size=1, rank=r, world_size=3).for_epoch(0)
              for r in range(3)]
    assert [len(s) for s in shards] == [1, 1, 1]
    assert {u for s in shards for b in s for u in b} == {"a", "b"}


def test_bad_inputs():
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        LengthBucketSampler([("a", 1), ("a", 2)], batch_size=1)
    with pytest.raises(ValueError, match="max_frames > 0 or batch_size > 0"):
        LengthBucketSampler([("a", 1)])

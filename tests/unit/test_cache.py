"""Unit tests for the byte-bounded LRU and the latest-only slot."""

from __future__ import annotations

import threading

import numpy as np

from tui_dicom.core.cache import ByteLRU, LatestSlot


def test_lru_stays_under_byte_bound_and_evicts_oldest() -> None:
    cache: ByteLRU[np.ndarray] = ByteLRU(max_bytes=3000)
    for i in range(10):
        cache.put(i, np.zeros(1000, dtype=np.uint8))
        assert cache.nbytes <= 3000
    assert len(cache) == 3
    assert cache.get(0) is None
    assert cache.get(9) is not None


def test_lru_get_refreshes_recency() -> None:
    cache: ByteLRU[np.ndarray] = ByteLRU(max_bytes=2000)
    cache.put("a", np.zeros(1000, dtype=np.uint8))
    cache.put("b", np.zeros(1000, dtype=np.uint8))
    assert cache.get("a") is not None
    cache.put("c", np.zeros(1000, dtype=np.uint8))
    assert "a" in cache and "b" not in cache


def test_lru_refuses_value_larger_than_bound() -> None:
    cache: ByteLRU[np.ndarray] = ByteLRU(max_bytes=100)
    cache.put("big", np.zeros(101, dtype=np.uint8))
    assert "big" not in cache and cache.nbytes == 0


def test_lru_replacing_a_key_updates_size() -> None:
    cache: ByteLRU[np.ndarray] = ByteLRU(max_bytes=10_000)
    cache.put("k", np.zeros(1000, dtype=np.uint8))
    cache.put("k", np.zeros(10, dtype=np.uint8))
    assert cache.nbytes == 10


def test_latest_slot_keeps_only_newest() -> None:
    slot: LatestSlot[int] = LatestSlot()
    for i in range(100):
        slot.put(i)
    assert slot.take(0) == 99
    assert slot.take(0) is None


def test_latest_slot_close_wakes_waiter() -> None:
    slot: LatestSlot[int] = LatestSlot()
    got: list[int | None] = []
    th = threading.Thread(target=lambda: got.append(slot.take(5)))
    th.start()
    slot.close()
    th.join(2)
    assert not th.is_alive() and got == [None]

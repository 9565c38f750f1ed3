"""Thread-safe LRU caches bounded in bytes (or in entries), and a latest-only request slot.

The slice loader, the picture widget's encoded frames and cell styles, and the kitty image ids all
use these two types: one eviction rule and one "newest request wins" rule for the whole viewer.
:func:`own_pages` gives the large values such a cache keeps memory of their own (see there).
"""

from __future__ import annotations

import mmap
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
T = TypeVar("T")


def one(_value: object) -> int:
    """A ``size_of`` that counts entries: ``ByteLRU(n, size_of=one)`` keeps the ``n`` most recent."""
    return 1


#: buffers from this size on get pages of their own (:func:`own_pages`); smaller ones stay in the heap
OWN_PAGES_FROM = 128 * 1024


#: private (a shared anonymous mapping is shared memory, twice as slow to fault in here), filled in at
#: once where the system can (one call rather than a fault per page: ~0.3 ms for 512 KB on these machines)
_PAGE_FLAGS = (mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0)) if hasattr(mmap, "MAP_PRIVATE") else 0


def own_pages(nbytes: int) -> bytearray | mmap.mmap:
    """A zero-filled, writable buffer of ``nbytes`` for a large value a cache keeps: its own anonymous
    memory mapping from :data:`OWN_PAGES_FROM` bytes on (a ``bytearray`` below, or if mapping fails).

    Why: the slice caches keep hundreds of 256-512 KB pictures and frames while every step also makes
    and frees megabyte-sized temporaries (windowing). Once the allocator has freed one such block it
    serves that size from its heap (glibc's dynamic mmap threshold), and the long-lived blocks and the
    short-lived ones then interleave there: holding a key through a 2,000-slice series left ~40 MB free
    but resident beside the 256 MB the cache counted. A mapping of its own goes back to the system
    when the last array over it is gone, so the process's memory follows what the cache counts.
    """
    if nbytes >= OWN_PAGES_FROM:
        try:
            if _PAGE_FLAGS:
                return mmap.mmap(-1, nbytes, flags=_PAGE_FLAGS)
            return mmap.mmap(-1, nbytes)  # Windows: no flags
        except (OSError, ValueError):  # out of mappings (vm.max_map_count) or address space: the heap then
            pass
    return bytearray(nbytes)


def _default_size(value: object) -> int:
    nbytes = getattr(value, "nbytes", None)
    return int(nbytes) if isinstance(nbytes, int) else 1


class ByteLRU(Generic[V]):
    """An LRU mapping whose values' total size (``value.nbytes`` by default) stays under ``max_bytes``.

    A single value larger than the bound is not stored. All methods are safe to call from any thread.
    ``on_evict(key, value)`` is called for each value pushed out by :meth:`put` (after the lock is
    released, in the putting thread), e.g. to free a kitty image the terminal holds for an evicted id.
    """

    def __init__(
        self,
        max_bytes: int,
        size_of: Callable[[V], int] = _default_size,
        on_evict: Callable[[Hashable, V], None] | None = None,
    ) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self._size_of = size_of
        self._on_evict = on_evict
        self._data: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """Total size of the cached values."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def get(self, key: Hashable) -> V | None:
        """Return the value for ``key`` (marking it recently used), or None."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value``, evicting least recently used values to stay under the bound."""
        size = max(0, int(self._size_of(value)))
        evicted: list[tuple[Hashable, V]] = []
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size <= self.max_bytes:
                self._data[key] = (value, size)
                self._bytes += size
                while self._bytes > self.max_bytes and self._data:
                    k, (v, s) = self._data.popitem(last=False)
                    self._bytes -= s
                    evicted.append((k, v))
        if self._on_evict is not None:
            for k, v in evicted:
                self._on_evict(k, v)

    def peek(self, key: Hashable) -> V | None:
        """Return the value for ``key`` without marking it used or counting a hit or miss."""
        with self._lock:
            item = self._data.get(key)
            return None if item is None else item[0]

    def values(self) -> list[V]:
        """The cached values, least recently used first (a snapshot)."""
        with self._lock:
            return [v for v, _s in self._data.values()]

    def clear(self) -> None:
        """Drop everything (``on_evict`` is not called: the caller knows what it clears)."""
        with self._lock:
            self._data.clear()
            self._bytes = 0


class LatestSlot(Generic[T]):
    """A one-item mailbox: :meth:`put` replaces whatever is waiting, :meth:`take` blocks for the newest.

    The slice loader thread takes requests from it, so holding a key never queues work: at most one
    request is being processed and one (the newest) is waiting.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has = False
        self._closed = False

    def put(self, item: T) -> None:
        """Offer ``item``, replacing any request not yet taken."""
        with self._cond:
            self._item = item
            self._has = True
            self._cond.notify()

    def take(self, timeout: float | None = None) -> T | None:
        """Return the newest item, waiting up to ``timeout`` s; None on timeout or when closed."""
        with self._cond:
            if not self._has and not self._closed:
                self._cond.wait(timeout)
            if not self._has:
                return None
            item, self._item, self._has = self._item, None, False
            return item

    def close(self) -> None:
        """Wake any waiter; later :meth:`take` calls return None unless an item is put."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def has_item(self) -> bool:
        """True if a request is waiting (a newer one than whatever is being processed)."""
        return self._has

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

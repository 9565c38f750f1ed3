"""Kitty image bookkeeping: image ids, the one placement, and what the terminal already holds.

A kitty picture costs its PNG once per image id and a few dozen bytes per placement afterwards, so
the viewer keeps, per picture widget, which pictures the terminal holds (an id per image key, the
48 most recent) and which id is placed. Ids pushed out of that LRU are freed in the terminal with
the next sequences written. Pure: it only produces escape text (:mod:`.kitty`); the widget decides
when to write it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Hashable

from tui_dicom.core.cache import ByteLRU, one
from tui_dicom.core.graphics import kitty
from tui_dicom.core.graphics.frames import KittyPicture


class KittyImages:
    """Image ids of transmitted pictures (LRU); knows what has been sent, placed and must be freed.

    Ids start at a random point (and the placement id is random) so two viewers in one terminal, or
    one started after another that crashed, do not place or delete each other's images.
    """

    def __init__(self, limit: int = 48, *, tmux: bool = False) -> None:
        self.limit = limit
        self.tmux = tmux
        self._ids: ByteLRU[int] = ByteLRU(limit, size_of=one, on_evict=self._evicted)
        #: ids whose image the terminal holds
        self.sent: set[int] = set()
        #: ids pushed out of the LRU whose image is still in the terminal (deleted on the next write)
        self.freed: list[int] = []
        self._next = itertools.count(random.randint(1 << 20, 1 << 30))
        self.placement_id = random.randint(1, 1 << 20)
        #: the id placed now (one placement per widget), None when nothing is placed
        self.placed: int | None = None

    def _evicted(self, _key: Hashable, iid: int) -> None:
        if iid in self.sent:
            self.sent.discard(iid)
            self.freed.append(iid)

    def id_for(self, key: Hashable) -> int:
        """The id for an image key (allocating one and evicting the oldest if needed)."""
        iid = self._ids.get(key)
        if iid is None:
            iid = next(self._next)
            self._ids.put(key, iid)
        return iid

    def show(self, pic: KittyPicture, at: tuple[int, int] | None = None) -> str:
        """Sequences that free evicted images, transmit ``pic`` if the terminal lacks it, and place it.

        Args:
            pic: the picture and its crop.
            at: absolute cell to place at (inside tmux, where the cursor position is not the pane's);
                None places at the cursor.
        """
        iid = self.id_for(pic.image_key)
        out = [kitty.delete_image(old, tmux=self.tmux) for old in self.freed]
        self.freed.clear()
        if iid not in self.sent:
            out.append(kitty.transmit(iid, pic.png, tmux=self.tmux))
            self.sent.add(iid)
        if self.placed is not None and self.placed != iid:
            out.append(kitty.delete_placement(self.placed, self.placement_id, tmux=self.tmux))
        out.append(
            kitty.place(
                iid, self.placement_id, pic.cells[2], pic.cells[3], source=pic.source, tmux=self.tmux, at=at
            )
        )
        self.placed = iid
        return "".join(out)

    def unplace(self) -> str:
        """The sequence that removes the placement ("" when nothing is placed)."""
        if self.placed is None:
            return ""
        seq = kitty.delete_placement(self.placed, self.placement_id, tmux=self.tmux)
        self.placed = None
        return seq

    def free_all(self) -> str:
        """Remove the placement and delete every image the terminal holds for us; forget all ids."""
        seq = self.unplace()
        seq += "".join(kitty.delete_image(i, tmux=self.tmux) for i in sorted(self.sent | set(self.freed)))
        self.sent.clear()
        self.freed.clear()
        self._ids.clear()
        return seq


__all__ = ["KittyImages"]

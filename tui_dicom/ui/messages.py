"""App-wide messages. Widgets post them up; the main screen (the mediator) reacts.

Widget-specific messages live in their widget (e.g. ``StudyTree.SeriesChosen``); these are the ones that
carry results from the loading workers back to the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from textual.message import Message

from tui_dicom.core.hierarchy.index import IndexProgress
from tui_dicom.core.hierarchy.model import Hierarchy, SliceRef
from tui_dicom.core.imaging.pixels import Frame
from tui_dicom.core.imaging.windowing import Window
from tui_dicom.core.inspector.tags import TagRow
from tui_dicom.core.session.slice_loader import SliceInfo


@dataclass
class IndexUpdated(Message):
    """The index worker has more of the hierarchy (posted every few hundred files and at the end)."""

    hierarchy: Hierarchy
    """A sorted snapshot of everything indexed so far."""
    progress: IndexProgress
    """How far the index is."""


@dataclass
class SliceReady(Message, bubble=False):
    """A slice was decoded and windowed (in the loader thread). For the screen that asked: it goes no
    further (one dispatch less at every slice step)."""

    seq: int
    """The request number it answers; older than the current request means stale."""
    slice: SliceRef
    """The slice."""
    picture: np.ndarray
    """The windowed 8-bit picture (HxW grey or HxWx3 RGB)."""
    frame: Frame
    """The decoded :class:`tui_dicom.core.imaging.pixels.Frame` (for the probe and measurements)."""
    window: Window | None
    """The :class:`tui_dicom.core.imaging.windowing.Window` used, or None for colour images."""
    info: SliceInfo
    """Per-slice header values for annotations, probe, cine and measuring (location, spacing, ...)."""
    rows: list[TagRow]
    """Tag rows of the slice's instance for the inspector."""
    header_error: str = ""
    """Why the header could not be read (empty when it was)."""


@dataclass
class SliceFailed(Message, bubble=False):
    """A slice could not be read or decoded."""

    seq: int
    """The request number it answers."""
    slice: SliceRef
    """The slice."""
    reason: str
    """A one-line, plain-language reason (already made terminal-safe)."""
    rows: list[TagRow]
    """Tag rows of the slice's instance (kept when only the pixels fail)."""
    header_error: str = ""
    """Why the header could not be read (empty when it was)."""


@dataclass
class VaryingReady(Message):
    """The tags that vary between the instances of a series were computed."""

    series_uid: str
    """The series."""
    paths: list[tuple[int, ...]]
    """Paths (as in :class:`tui_dicom.core.inspector.tags.TagRow`) of the elements that differ between instances."""

"""The terminal driver: Textual's Linux driver with terminal answers filtered out of the keys.

Textual reads the terminal in its driver's input thread and feeds the text to its key parser, which
turns anything it does not know (``ESC [ ? 6 2 ; 4 c``, a late answer to the start-up queries) into
key presses. :class:`ReplyFilteringDriver` runs the same loop with a
:class:`~tui_dicom.core.graphics.replies.ReplyFilter` between the read and the parser, for the whole
session. On exit it asks once more (DA1) and waits until that answer arrives, so every answer still
on its way is read and dropped before the terminal goes back to the shell (where it would be echoed as
``^[[?62;4c``).

This is the only module that relies on Textual internals:

* the input loop mirrors ``LinuxDriver.run_input_thread`` (Textual 8) and uses its attributes
  ``fileno``, ``exit_event`` (replaced by an event that wakes the loop) and ``_debug``, the private
  ``textual._xterm_parser.XTermParser`` and its ``_timeout_time`` (an escape sequence is incomplete)
  (checked by ``tests/terminal/test_reply_filter.py``);
* :class:`LazyStrip` replaces ``Strip._segments`` (the slot every Strip method reads) with a
  property, so a picture line's Rich segments are built only when Textual needs them;
* :func:`write_now` writes through ``App._driver`` outside a refresh (kitty deletions that must
  happen even when nothing is repainted);
* :func:`widgets_over` reads ``Screen._compositor.visible_widgets`` (front to back) to find what
  covers a widget;
* :class:`SparseCompositor` replaces ``Screen._compositor`` (:func:`use_sparse_compositor`) and
  overrides ``Compositor.render_partial_update`` and ``Compositor._get_renders``;
* :func:`relabel` sets ``TreeNode._label``/``_updates`` (the tree's line-cache key: a label shown
  before gets its old value back) and reads ``Tree._tree_lines`` and ``Tree._refresh_line``;
* :class:`StyleMemo` reads ``RenderStyles._cache_key`` and ``DOMNode._component_styles`` to keep a
  widget's Rich styles across repaints.

``tests/ui/test_textual_internals.py`` checks the last three against the installed Textual and fails
loudly when they change.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import selectors
import threading
import time
from codecs import getincrementaldecoder
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._compositor import ChopsUpdate, Compositor
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.app import App
from textual.drivers.linux_driver import LinuxDriver
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui_dicom.core.graphics.replies import ReplyFilter

#: the query sent at exit: every terminal answers DA1, and answers in order
FENCE_QUERY = "\x1b[c"
#: longest wait at exit for answers to the start-up queries that never arrived during the session
FENCE_TIMEOUT_LATE = 4.0
#: longest wait at exit when every start-up answer arrived (one round trip)
FENCE_TIMEOUT = 1.0
#: longest sleep of the idle input thread (setting the exit flag wakes it at once)
IDLE_WAIT = 5.0


class _WakingEvent(threading.Event):
    """The driver's exit flag: setting it also writes to a pipe the input thread waits on."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self._wake_fd = wake_fd

    def set(self) -> None:
        """Set the flag and wake the input thread."""
        super().set()
        with contextlib.suppress(OSError):  # full (already woken) or closed
            os.write(self._wake_fd, b"x")


@dataclass
class ReplySession:
    """What the start-up queries left open, shared between start-up and the driver.

    Attributes:
        queried: the terminal was asked at start-up (no fence at exit otherwise).
        da1_outstanding: DA1 answers asked for at start-up but not read then (1 when it timed out).
        asked_at: ``time.monotonic()`` when the start-up queries were sent.
        tty_attrs: the terminal settings from before start-up (echo was left off so that late
            answers are not echoed): what the driver restores on exit.
        filter: the reply filter of the session.
    """

    queried: bool = False
    da1_outstanding: int = 0
    asked_at: float = 0.0
    tty_attrs: Any = None
    #: seconds from asking to the start-up DA1 answer when it came late (the link's round trip)
    late_round_trip: float | None = None
    filter: ReplyFilter = field(default_factory=ReplyFilter)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def note_reply(self, _reply: str) -> None:
        """Note the round trip of a late start-up answer; wake whoever waits (called per answer)."""
        with self._changed:
            if self.late_round_trip is None and self.da1_outstanding and self.filter.da1_seen == 1:
                self.late_round_trip = time.monotonic() - self.asked_at
            self._changed.notify_all()

    def wait_da1(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` DA1 answers went by in total; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.filter.da1_seen < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True


def make_driver(session: ReplySession) -> type[LinuxDriver]:
    """A driver class bound to ``session`` (for ``App.driver_class``)."""

    class _Driver(ReplyFilteringDriver):
        reply_session = session

    return _Driver


class ReplyFilteringDriver(LinuxDriver):
    """Textual's Linux driver, with terminal answers removed from the input for the whole session."""

    reply_session: ReplySession = ReplySession()

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        session = self.reply_session
        session.filter.on_reply = session.note_reply
        self._fenced = False
        # the input thread sleeps until a key arrives (Textual's loop wakes ten times a second to look
        # at its exit flag): setting the exit flag also wakes it, through this pipe
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.exit_event = _WakingEvent(self._wake_write)

    def close(self) -> None:
        """Textual's clean-up, then the wake-up pipe."""
        super().close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_read = self._wake_write = -1

    def start_application_mode(self) -> None:
        """Textual's start; on exit restore the settings from before the start-up queries."""
        super().start_application_mode()  # type: ignore[no-untyped-call]  # untyped in Textual
        if self.reply_session.tty_attrs is not None:
            self.attrs_before = self.reply_session.tty_attrs

    def run_input_thread(self) -> None:
        """Wait for input, drop terminal answers, feed the rest to Textual's parser."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        wake = self._wake_read
        if wake >= 0:
            selector.register(wake, selectors.EVENT_READ)
        fileno = self.fileno
        parser = XTermParser(self._debug)
        feed = parser.feed
        tick = parser.tick
        replies = self.reply_session.filter
        decode = getincrementaldecoder("utf-8")(errors="replace").decode

        def wait() -> float:
            """How long the next select may sleep: short while a reply or an escape sequence is
            incomplete (the filter and the parser time them out), else until input or exit."""
            if replies.holding:
                return 0.05
            if parser._timeout_time is not None or wake < 0:
                return 0.1
            return IDLE_WAIT

        def process(ready: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> None:
            for key, mask in ready:
                if key.fd == wake:
                    with contextlib.suppress(OSError):  # drained: only the exit flag matters
                        os.read(wake, 512)
                    continue
                if mask & selectors.EVENT_READ:
                    data = os.read(fileno, 4096)
                    if not data:
                        break
                    text = replies.feed(decode(data, final=final), time.monotonic())
                    if text:
                        for event in feed(text):
                            self.process_message(event)
            held = replies.flush(time.monotonic())
            if held:
                for event in feed(held):
                    self.process_message(event)
            for event in tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process(selector.select(wait()))
            selector.unregister(fileno)
            process(selector.select(0.1), final=True)
        finally:
            selector.close()
            try:
                for _event in feed(""):
                    pass
            except (EOFError, ParseError):
                pass

    def disable_input(self) -> None:
        """Before input stops: ask DA1 once more and read until its answer (every answer before it).

        Without this, answers still on their way when the app quits reach the shell.
        """
        session = self.reply_session
        if session.queried and not self._fenced and not self.exit_event.is_set() and self.input_tty:
            self._fenced = True
            # the session's filter has seen every DA1 answer since start-up: the late start-up ones
            # and then the fence's
            target = session.da1_outstanding + 1
            timeout = FENCE_TIMEOUT
            if session.late_round_trip is not None:  # a slow link: wait for its round trip
                timeout = min(FENCE_TIMEOUT_LATE, max(FENCE_TIMEOUT, 1.5 * session.late_round_trip + 0.2))
            if session.filter.da1_seen < session.da1_outstanding:
                # a start-up answer is still on its way, or never comes (a terminal that does not
                # answer DA1): wait for a slow link, not longer than FENCE_TIMEOUT_LATE after asking
                age = time.monotonic() - session.asked_at
                timeout = min(FENCE_TIMEOUT_LATE, max(FENCE_TIMEOUT, FENCE_TIMEOUT_LATE - age))
            try:
                self.write(FENCE_QUERY)
            except AssertionError:  # not in application mode
                pass
            else:
                session.wait_da1(target, timeout)
        super().disable_input()


# ------------------------------------------------------------------------------ drawing internals


class LazyStrip(Strip):
    """A Strip whose segments are built on first use by :meth:`build_segments`.

    Textual's Strip keeps its segments in the ``_segments`` slot and every method reads it; this
    class puts a property there. Subclasses override :meth:`render` to write pre-encoded text, so
    the segments are built only when Textual restyles or screenshots the line.
    """

    __slots__ = ("_lazy",)

    def __init__(self, cell_length: int) -> None:
        self._lazy: list[Segment] | None = None
        super().__init__((), cell_length)

    def build_segments(self) -> list[Segment]:
        """The line as Rich segments (called at most once, when Textual needs them)."""
        raise NotImplementedError

    @property
    def _segments(self) -> list[Segment]:
        if self._lazy is None:
            self._lazy = self.build_segments()
        return self._lazy

    @_segments.setter
    def _segments(self, value: list[Segment]) -> None:
        self._lazy = list(value) if value else None


def write_now(app: App[Any], text: str) -> None:
    """Write ``text`` to the terminal at once (not in a refresh); nothing when headless or not running."""
    driver = getattr(app, "_driver", None)
    if text and driver is not None and not app.is_headless:
        driver.write(text)
        driver.flush()


def widgets_over(widget: Widget) -> frozenset[int]:
    """Ids of the widgets drawn over ``widget`` (toasts, tooltips), not its ancestors; empty off screen.

    The compositor makes a new visible-widget map whenever the layout changes (a notification comes or
    goes): the answers are kept with the map they were found in (on the compositor), so a picture
    repainted at every slice step does not walk every widget's ancestors each time.
    """
    try:
        compositor = widget.screen._compositor
        visible = compositor.visible_widgets
    except Exception:  # noqa: BLE001 - not on a screen
        return frozenset()
    memo: tuple[object, dict[Widget, frozenset[int]]] | None = getattr(compositor, "_tui_widgets_over", None)
    if memo is None or memo[0] is not visible:
        memo = (visible, {})
        compositor._tui_widgets_over = memo  # type: ignore[attr-defined]  # dies with the compositor
    found = memo[1].get(widget)
    if found is None:
        found = memo[1][widget] = _widgets_over(widget, visible)
    return found


def _widgets_over(widget: Widget, visible: Mapping[Widget, tuple[Region, Region]]) -> frozenset[int]:
    mine = visible.get(widget)
    if mine is None:
        return frozenset()
    region = mine[0]
    found: list[int] = []
    for other in visible:  # front to back
        if other is widget:
            return frozenset(found)
        if other not in widget.ancestors and visible[other][0].overlaps(region):
            found.append(id(other))
    return frozenset()


class SparseCompositor(Compositor):
    """Textual's compositor, with partial updates that render only what touches a changed region.

    Textual paints a partial update by asking *every* widget that overlaps the bounding box of all
    changed regions for *all* its lines, then keeps the changed lines. One slice step changes the
    picture's first line (kitty, sixel) or the picture (half-block), the counter under it and a few
    inspector rows on the other side of the screen: their bounding box covers most of the screen, so
    some twenty widgets re-rendered all their lines to repaint a handful. Here a widget is asked only
    when it shows in a changed region (it overlaps it, and no widget in front of it contains the region
    whole), and only for the rows the changed regions cover (its full width: Textual cuts lines at
    widget edges, so a narrower piece would land on the wrong cut). The terminal receives the same
    bytes; full updates and screenshots take Textual's own path.
    """

    def __init__(self) -> None:
        super().__init__()
        #: the changed regions of the partial update being rendered (None: any other render)
        self._update_regions: list[Region] | None = None

    def render_partial_update(self) -> ChopsUpdate | None:
        """Textual's partial update, with the changed regions kept for :meth:`_get_renders`."""
        self._update_regions = list(self._dirty_regions)
        try:
            return super().render_partial_update()
        finally:
            self._update_regions = None

    def _get_renders(self, crop: Region | None = None) -> Iterable[tuple[Region, Region, list[Strip]]]:
        """Front to back: (region, clip, lines) of each widget that shows in a changed region, its
        lines limited to the rows the changed regions cover there (``clip`` narrowed to those rows).

        A changed region that lies wholly inside a widget (a picture, a tag row) hides that widget's
        containers, so they and the screen are not asked for those rows. Other widgets behind it still
        are (a picture under a notification must learn that it is covered).
        """
        regions = self._update_regions
        if regions is None:
            yield from super()._get_renders(crop)
            return
        widgets: list[tuple[Widget, Region, int, int, int, int]] = []
        for widget, (region, clip) in self.visible_widgets.items():
            x, y, width, height = region.intersection(clip)
            if width and height:
                widgets.append((widget, region, x, y, x + width, y + height))
        changed = [(r.x, r.y, r.right, r.bottom) for r in regions]
        # for each changed region, the containers of the frontmost widget that contains it whole: they
        # are hidden there by that widget
        hidden_in: list[frozenset[Widget]] = []
        containers: dict[int, frozenset[Widget]] = {}
        for x1, y1, x2, y2 in changed:
            hidden: frozenset[Widget] = frozenset()
            for i, (owner, _r, wx1, wy1, wx2, wy2) in enumerate(widgets):
                if wx1 <= x1 and wy1 <= y1 and x2 <= wx2 and y2 <= wy2:
                    if i not in containers:
                        containers[i] = frozenset(
                            node for node in owner.ancestors if isinstance(node, Widget)
                        )
                    hidden = containers[i]
                    break
            hidden_in.append(hidden)
        for widget, region, wx1, wy1, wx2, wy2 in widgets:
            top, bottom = wy2, wy1
            for hidden, (x1, y1, x2, y2) in zip(hidden_in, changed, strict=True):
                if widget not in hidden and x1 < wx2 and wx1 < x2 and y1 < wy2 and wy1 < y2:
                    top = min(top, max(y1, wy1))
                    bottom = max(bottom, min(y2, wy2))
            if bottom <= top:
                continue
            width, height = wx2 - wx1, bottom - top
            yield (
                region,
                Region(wx1, top, width, height),
                widget.render_lines(Region(wx1 - region.x, top - region.y, width, height)),
            )


#: versions handed out by :func:`_label_version`, spaced so that Textual's own ``+= 1`` bumps of a node
#: (hover, expansion, a label set elsewhere) never reach the next one
_VERSIONS = itertools.count(1 << 32)
_VERSION_STRIDE = 1 << 16


def _label_version(node: TreeNode[Any], label: Text) -> int:
    """The ``_updates`` value for ``node`` showing ``label``: the one it had when it last showed that
    label, as long as nothing else changed the node since (else a new one, never used before).

    Textual's tree keeps rendered lines by ``(line, ..., _updates of the nodes on the path)``; giving a
    label its old version back makes a slice shown again (stepping back and forth) find its rows
    already rendered, where a fresh version re-rendered them (~0.5 ms a row).
    """
    memo: tuple[int, dict[tuple[Any, ...], int]] | None = getattr(node, "_tui_versions", None)
    if memo is None or memo[0] != node._updates:  # new, or changed by something else since
        memo = (-1, {})
    key = (
        label.plain,
        tuple(label.spans),
        label.style,
        label.justify,
        label.overflow,
        label.no_wrap,
        label.end,
    )
    version = memo[1].get(key)
    if version is None:
        if len(memo[1]) >= 256:
            memo[1].clear()
        version = memo[1][key] = next(_VERSIONS) * _VERSION_STRIDE
    node._tui_versions = (version, memo[1])  # type: ignore[attr-defined]
    return version


def relabel(tree: Tree[Any], labels: Mapping[TreeNode[Any], Text]) -> None:
    """Give several nodes of ``tree`` new labels, repainting only the visible lines of those nodes.

    ``TreeNode.set_label`` schedules one callback per node, each scanning every visible line; a slice
    step changes a dozen tag values at once, so that was a dozen callbacks (about a millisecond of
    the step) for the two or three changed rows on screen. A label a node showed before gets its
    line-cache version back (:func:`_label_version`).
    """
    if not labels:
        return
    for node, label in labels.items():
        node._label = tree.process_label(label)
        node._updates = _label_version(node, label)  # part of the tree's line-cache key
    top = tree.scroll_offset.y
    # the rows left of the scroll bar (Tree._refresh_line takes the bar's columns too, and the bar was
    # asked to repaint its cells beside every changed row)
    width = tree.scrollable_content_region.width
    for number, line in enumerate(tree._tree_lines[top : top + tree.size.height], top):
        if line.path and line.path[-1] in labels:
            tree.refresh(Region(0, number - top, width, 1))


class StyleMemo(Widget):
    """A widget whose Rich styles (its own and its component classes') survive a repaint.

    Textual recomputes them after every ``refresh()`` (``rich_style`` walks every ancestor, adding
    colours; ``refresh`` clears the component-style cache). A tree whose rows change at every slice
    step repaints two rows and paid ~0.8 ms of that style work per row. Here they are kept until a
    style of the widget, of an ancestor or of the component class changes: every CSS change (a
    pseudo-class, a theme, an inline style) bumps the changed node's ``styles._cache_key``, which is
    part of the memo's key.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._style_memo: dict[Any, Style] = {}

    def _style_key(self) -> tuple[int, ...]:
        """Changes whenever a style of this widget or of an ancestor changes."""
        return tuple(node.styles._cache_key for node in self.ancestors_with_self)

    @property
    def rich_style(self) -> Style:
        """Textual's ``rich_style``, kept while no style on the way to the screen changed."""
        key = ("", self._style_key())
        style = self._style_memo.get(key)
        if style is None:
            style = Widget.rich_style.fget(self)  # type: ignore[attr-defined]
            self._remember(key, style)
        return style

    def get_component_rich_style(
        self, *names: str, partial: bool = False, default: Style | None = None
    ) -> Style:
        """Textual's component style, kept while no style it depends on changed."""
        components = self._component_styles
        if default is not None or not all(name in components for name in names):
            return super().get_component_rich_style(*names, partial=partial, default=default)
        key = (names, partial, self._style_key(), tuple(components[name]._cache_key for name in names))
        style = self._style_memo.get(key)
        if style is None:
            style = super().get_component_rich_style(*names, partial=partial)
            self._remember(key, style)
        return style

    def _remember(self, key: Any, style: Style) -> None:
        if len(self._style_memo) >= 64:  # old keys (styles that changed since) are never asked again
            self._style_memo.clear()
        self._style_memo[key] = style

    def notify_style_update(self) -> None:
        """Styles changed: forget them (the keys would miss anyway; this frees the memory)."""
        self._style_memo.clear()
        super().notify_style_update()


def use_sparse_compositor(screen: Screen[Any]) -> None:
    """Give ``screen`` a :class:`SparseCompositor` (call in its ``__init__``, before it is mounted)."""
    screen._compositor = SparseCompositor()


__all__ = [
    "FENCE_QUERY",
    "LazyStrip",
    "ReplyFilteringDriver",
    "ReplySession",
    "SparseCompositor",
    "StyleMemo",
    "make_driver",
    "relabel",
    "use_sparse_compositor",
    "widgets_over",
    "write_now",
]

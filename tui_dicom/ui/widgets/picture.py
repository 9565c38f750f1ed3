"""PictureView: a picture in the terminal as half-block cells, kitty graphics or sixel (the widget).

Usage::

    from tui_dicom.core.graphics.terminal import detect
    info = detect()                              # once, before App.run()
    view = PictureView(terminal=info)            # or: the app's ``terminal_info`` when mounted
    ...
    view.show(key, uint8_array, pixel_aspect=1.0, view=View(), shapes=())

The work is in the pure core; this module only ties it to Textual:

* :mod:`tui_dicom.core.graphics.frames` encodes a :class:`FrameRequest` (picture, view, pane size,
  renderer, colours) into an :class:`EncodedFrame` that writes any cell range of any line;
* :mod:`tui_dicom.core.graphics.placements` knows which kitty images the terminal holds, what is
  placed and what to free;
* :mod:`tui_dicom.core.cache` holds the encoded frames and cell styles (LRU) and the latest-only
  request slot.

How it works:

* :meth:`PictureView.show` only stores the request. One encoder thread at a time works on the
  latest request (a newer ``show`` while it runs replaces the pending one: frames are never
  queued); results land in a small LRU keyed by (key, view, shapes, pane size, renderer, colours,
  cell size) and are drawn by the next refresh.
* The widget overrides ``render_lines`` and returns :class:`FrameStrip` objects. Their
  ``render()`` emits the frame's pre-encoded escape sequences (compact SGR half-blocks, or the
  sixel/kitty payload at the picture's first cell), so the graphics travel through Textual's own
  writer inside its synchronized-output bracket. Their segments (used when the screen is behind a
  modal, for SVG screenshots, or when Textual has to re-style a strip) are the same picture as
  ordinary half-block segments, built lazily.
* Sixel: the cells under the picture emit nothing (cursor forward), so repainting them never
  erases the image; the picture never reaches the screen's last row (xterm would scroll).
* Kitty: each picture is transmitted once per image id (PNG, native size when there are no
  overlays; placed at z=0, over its own blank cells, and replaced by its half-block twin while a
  notification covers it) and then only placed (``c``/``r`` scaling, ``x,y,w,h`` crop for zoom/pan);
  placements are deleted when the screen goes behind a modal, when hidden and on unmount; images
  evicted from the id LRU are freed.

Textual internals (lazy strip segments, writing outside a refresh, what covers the widget) are
used only through :mod:`tui_dicom.ui.driver`.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
from rich.color import Color as RichColor
from rich.segment import ControlType, Segment
from rich.style import Style
from textual import events
from textual.app import RenderResult
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from tui_dicom.core.cache import ByteLRU, LatestSlot, one
from tui_dicom.core.graphics import halfblock
from tui_dicom.core.graphics.frames import EncodedFrame, FrameRequest, KittyPicture, encode
from tui_dicom.core.graphics.layout import Layout, Shape, View
from tui_dicom.core.graphics.placements import KittyImages
from tui_dicom.core.graphics.terminal import TerminalInfo
from tui_dicom.ui.driver import LazyStrip, widgets_over, write_now

_DEFAULT_VIEW = View()

#: the encoded frame type (kept under its old name: tests and screens read ``.request``/``.layout``)
Frame = EncodedFrame


# ---------------------------------------------------------------------------------------------- strips

#: Rich styles of half-block cells by (fg key, bg key, colour mode), shared by every PictureView
_STYLES: ByteLRU[Style] = ByteLRU(20000, size_of=one)


def _style(fg: int, bg: int, hb: halfblock.HalfBlockFrame) -> Style:
    """A cached Rich style for a half-block cell (colour keys as in :mod:`halfblock`)."""
    k = (fg, bg, hb.colors)
    s = _STYLES.get(k)
    if s is None:
        if hb.colors == "256":
            s = Style(color=RichColor.from_ansi(fg), bgcolor=RichColor.from_ansi(bg))
        else:
            s = Style(color=RichColor.from_rgb(*hb.rgb(fg)), bgcolor=RichColor.from_rgb(*hb.rgb(bg)))
        _STYLES.put(k, s)
    return s


def _blank_style(frame: EncodedFrame) -> Style:
    return Style(bgcolor=RichColor.from_rgb(*frame.request.background))


def segments(frame: EncodedFrame, y: int, start: int, end: int) -> list[Segment]:
    """Ordinary half-block segments for cells ``[start, end)`` of line ``y`` (modal background,
    screenshots, any Textual restyling)."""
    ix, iy, iw, ih = frame.layout.cells
    if not (iy <= y < iy + ih) or end <= ix or start >= ix + iw:
        return [Segment(" " * (end - start), _blank_style(frame))] if end > start else []
    a, b = max(start, ix), min(end, ix + iw)
    segs: list[Segment] = []
    if start < ix:
        segs.append(Segment(" " * (ix - start), _blank_style(frame)))
    hb = frame.hb
    top = hb.top[y - iy, a - ix : b - ix].tolist()
    bottom = hb.bottom[y - iy, a - ix : b - ix].tolist()
    run_key: tuple[int, int] | None = None
    n = 0
    for key in zip(top, bottom, strict=True):
        if key == run_key:
            n += 1
            continue
        if run_key is not None:
            segs.append(Segment(halfblock.UPPER * n, _style(run_key[0], run_key[1], hb)))
        run_key, n = key, 1
    if run_key is not None:
        segs.append(Segment(halfblock.UPPER * n, _style(run_key[0], run_key[1], hb)))
    if end > ix + iw:
        segs.append(Segment(" " * (end - ix - iw), _blank_style(frame)))
    return segs


def frame_strips(frame: EncodedFrame) -> list[Strip]:
    """One :class:`FrameStrip` per line of the pane."""
    return [FrameStrip(frame, y, 0, frame.width) for y in range(frame.height)]


def plain_strips(frame: EncodedFrame, prefix: str = "") -> list[Strip]:
    """Ordinary Strips (no payload); ``prefix`` is emitted as a control segment on the first line."""
    out = [Strip(segments(frame, y, 0, frame.width), frame.width) for y in range(frame.height)]
    if prefix and out:
        out[0] = Strip([Segment(prefix, None, ((ControlType.BELL,),))] + list(out[0]), frame.width)
    return out


class FrameStrip(LazyStrip):
    """A Strip that renders straight from an :class:`EncodedFrame` (compact SGR / graphics payload).

    Cropping and dividing return FrameStrips of the sub-range, so Textual's compositor can cut the
    line around overlapping widgets and each piece is still self-contained. Its segments are built
    only when Textual needs segments (restyling, background screens, screenshots).
    """

    __slots__ = ("_frame", "_y", "_x0", "_x1")

    def __init__(self, frame: EncodedFrame, y: int, x0: int, x1: int) -> None:
        self._frame = frame
        self._y = y
        self._x0 = x0
        self._x1 = x1
        super().__init__(x1 - x0)

    def build_segments(self) -> list[Segment]:
        """The piece as half-block segments."""
        return segments(self._frame, self._y, self._x0, self._x1)

    def crop(self, start: int, end: int | None = None) -> Strip:
        """Crop to cells ``[start, end)`` (still a FrameStrip)."""
        length = self._x1 - self._x0
        start = max(0, start)
        end = length if end is None else min(length, end)
        if start == 0 and end == length:
            return self
        if end <= start:
            return Strip([], 0)
        return FrameStrip(self._frame, self._y, self._x0 + start, self._x0 + end)

    def divide(self, cuts: Any) -> Sequence[Strip]:
        """Divide at cell positions (each piece a FrameStrip)."""
        length = self._x1 - self._x0
        out: list[Strip] = []
        pos = 0
        for cut in cuts:
            if cut > length:
                break
            out.append(self.crop(pos, cut))
            pos = cut
        return out

    def render(self, console: Any) -> str:
        """The pre-encoded escape sequences of this piece of the line."""
        return self._frame.render_line(self._y, self._x0, self._x1)


# ---------------------------------------------------------------------------------------------- widget


class PictureView(Widget, can_focus=False):
    """Shows one picture, fitted in the widget, with the renderer of the terminal.

    Attributes down: :meth:`show`. Messages up: :class:`Displayed` after every drawn frame, mouse
    messages in image coordinates.
    """

    DEFAULT_CSS = """
    PictureView { width: 1fr; height: 1fr; background: black; }
    """

    renderer: reactive[str] = reactive("halfblock", init=False)
    """"kitty", "sixel", "halfblock" ("unicode" draws half-block too)."""

    # ------------------------------------------------------------------ messages
    class Displayed(Message):
        """A frame was drawn (posted once per new frame, after the refresh that shows it)."""

        def __init__(
            self,
            view: PictureView,
            region_cells: tuple[int, int, int, int],
            cell_px: tuple[int, int],
            renderer: str,
            key: Hashable,
            picture: np.ndarray,
            layout: Layout,
        ) -> None:
            super().__init__()
            self.picture_view = view
            self.region_cells = region_cells
            """Absolute screen cells ``(x, y, w, h)`` covered by the picture."""
            self.cell_px = cell_px
            """Terminal cell size in pixels ``(w, h)``."""
            self.renderer = renderer
            """Renderer that drew it."""
            self.key = key
            """The key passed to :meth:`PictureView.show`."""
            self.picture = picture
            """The exact picture shown, at its encoded resolution (uint8 grey or RGB)."""
            self.layout = layout
            """The layout (mapping between image and cell coordinates)."""

        @property
        def control(self) -> PictureView:
            """The PictureView that posted this."""
            return self.picture_view

    class Mouse(Message):
        """Base of the mouse messages: a position in image coordinates (None outside the picture)."""

        def __init__(
            self, view: PictureView, event: events.MouseEvent, image: tuple[float, float] | None
        ) -> None:
            super().__init__()
            self.picture_view = view
            self.image = image
            """``(row, col)`` image coordinates (float; ``int()`` gives the pixel), None outside the picture."""
            self.button = event.button
            """1 left, 2 middle, 3 right (0 none)."""
            self.cell = (event.x, event.y)
            """Cell relative to the widget."""
            self.screen_cell = (event.screen_x, event.screen_y)
            """Absolute screen cell."""
            self.ctrl, self.shift, self.meta = event.ctrl, event.shift, event.meta

        @property
        def control(self) -> PictureView:
            """The PictureView that posted this."""
            return self.picture_view

    class Clicked(Mouse):
        """A mouse button went down over the widget."""

    class Released(Mouse):
        """A mouse button went up (after a click or a drag)."""

    class Dragged(Mouse):
        """The mouse moved with a button held; ``start`` is where the button went down."""

        def __init__(
            self,
            view: PictureView,
            event: events.MouseEvent,
            image: tuple[float, float] | None,
            start: tuple[int, int],
            start_image: tuple[float, float] | None,
        ) -> None:
            super().__init__(view, event, image)
            self.start_cell = start
            """Widget cell where the drag started."""
            self.start_image = start_image
            """Image coordinates where the drag started."""
            self.delta_cells = (self.cell[0] - start[0], self.cell[1] - start[1])
            """Cells moved since the start."""

        def can_replace(self, message: Message) -> bool:
            """Coalesce drags: only the latest position matters."""
            return isinstance(message, PictureView.Dragged)

    class Hovered(Mouse):
        """The mouse moved over the widget with no button held."""

        def can_replace(self, message: Message) -> bool:
            """Coalesce hovering."""
            return isinstance(message, PictureView.Hovered)

    class Wheel(Mouse):
        """Mouse wheel over the widget; ``direction`` is +1 (down) or -1 (up)."""

        def __init__(
            self,
            view: PictureView,
            event: events.MouseEvent,
            image: tuple[float, float] | None,
            direction: int,
        ) -> None:
            super().__init__(view, event, image)
            self.direction = direction
            """+1 wheel down, -1 wheel up."""

    # ------------------------------------------------------------------ life cycle
    def __init__(
        self,
        *,
        terminal: TerminalInfo | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        cache_frames: int = 12,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        #: the terminal was given by whoever built the widget (else the app's is taken when mounted)
        self._terminal_given = terminal is not None
        self._terminal = TerminalInfo()
        self._kitty = KittyImages()
        self.terminal = terminal or TerminalInfo()
        self._seq = itertools.count(1)
        self._request: tuple[Hashable, np.ndarray, float, View, tuple[Shape, ...]] | None = None
        #: callbacks of :meth:`show` waiting for their picture to be installed (run in order)
        self._on_shown: list[Callable[[], None]] = []
        self._latest_seq = 0
        self._busy = False
        #: the newest request that arrived while the encoder was busy (older ones are replaced)
        self._pending: LatestSlot[FrameRequest] = LatestSlot()
        self._frame: EncodedFrame | None = None
        self._strips: list[Strip] = []
        self._announced: EncodedFrame | None = None
        #: encoded frames with their strips (built once per frame, reused whenever it is shown again)
        self._cache: ByteLRU[tuple[EncodedFrame, list[Strip]]] = ByteLRU(cache_frames, size_of=one)
        self._overlap: frozenset[int] = frozenset()
        self._drag_start: tuple[int, int] | None = None
        self._drag_image: tuple[float, float] | None = None
        self.error: str | None = None

    @property
    def terminal(self) -> TerminalInfo:
        """The terminal's graphics capabilities (renderer, colours, cell size, sixel limits, tmux).

        Setting it picks the terminal's renderer and forgets the kitty images of the old one.
        """
        return self._terminal

    @terminal.setter
    def terminal(self, info: TerminalInfo) -> None:
        self._terminal = info
        self._kitty = KittyImages(tmux=info.tmux)
        self.set_reactive(PictureView.renderer, "halfblock" if info.renderer == "unicode" else info.renderer)

    @property
    def renderer_description(self) -> str:
        """The renderer and why it was chosen, e.g. ``sixel: terminal reports sixel in DA1``, and
        :attr:`size_note` when the picture on screen was made smaller for the terminal."""
        if self.renderer == self.terminal.renderer or (self.terminal.renderer == "unicode"):
            text = self.terminal.reason
        else:
            text = f"{self.renderer}: set by the app"
        note = self.size_note
        return f"{text}; {note}" if note else text

    @property
    def size_note(self) -> str:
        """Why the picture on screen is smaller than the pane allows ("" when it is not)."""
        frame = self._frame
        if frame is None or not frame.layout.limited:
            return ""
        w, h = self.terminal.sixel_max_px
        if self.terminal.sixel_max_source == "terminal":
            return f"picture scaled down to the terminal's largest sixel ({w}×{h} px)"
        return f"picture scaled down to {w}×{h} px: the terminal did not say its largest sixel"

    @property
    def layout_now(self) -> Layout | None:
        """The layout of the frame on screen (None before the first frame)."""
        return self._frame.layout if self._frame else None

    def show(
        self,
        key: Hashable,
        picture: np.ndarray,
        *,
        pixel_aspect: float = 1.0,
        view: View = _DEFAULT_VIEW,
        shapes: Sequence[Shape] = (),
        on_shown: Callable[[], None] | None = None,
    ) -> None:
        """Show a picture (encoding happens in a thread; only the latest call matters).

        Args:
            key: identifies the picture content (e.g. slice and window); used for caching.
            picture: uint8 ``HxW`` grey or ``HxWx3`` RGB.
            pixel_aspect: physical pixel height / width.
            view: zoom, pan, rotation, flips.
            shapes: vector overlays in image coordinates.
            on_shown: called on the UI thread in the very turn the picture becomes the one drawn
                (at once when it is cached), so text that belongs to it (a slice counter, tag
                values) is repainted in the same screen update instead of one frame earlier. If a
                newer ``show`` replaces this one first, the callback runs with the newer picture
                (callbacks are never dropped); also when the picture cannot be drawn.
        """
        if on_shown is not None:
            self._on_shown.append(on_shown)
        self._request = (key, picture, float(pixel_aspect), view, tuple(shapes))
        self._schedule()

    def _run_on_shown(self) -> None:
        """Run the :meth:`show` callbacks waiting so far (in order)."""
        callbacks, self._on_shown = self._on_shown, []
        for callback in callbacks:
            callback()

    def clear(self) -> None:
        """Show nothing."""
        self._request = None
        self._frame = None
        self._strips = []
        self._remove_graphics()
        self.refresh()
        self._run_on_shown()

    def image_coords(self, cell_x: int, cell_y: int) -> tuple[float, float] | None:
        """Image ``(row, col)`` at a cell relative to the widget, None outside the picture."""
        return self._frame.layout.cell_to_image(cell_x, cell_y) if self._frame else None

    def watch_renderer(self, old: str, new: str) -> None:
        """Re-encode with the new renderer, removing kitty images when leaving kitty."""
        if old == "kitty":
            self._remove_graphics(free=True)
        self._schedule()

    def on_resize(self, event: events.Resize) -> None:
        """Re-fit the picture to the new size."""
        self._schedule()

    def on_mount(self) -> None:
        """Take the app's terminal if none was given; encode whatever was requested before mounting."""
        if not self._terminal_given:
            info = getattr(self.app, "terminal_info", None)
            if isinstance(info, TerminalInfo):
                self.terminal = info
        self._schedule()

    def on_hide(self) -> None:
        """Graphics do not disappear with the widget: remove them."""
        self._remove_graphics()

    def on_show(self) -> None:
        """Draw again when shown."""
        self.refresh()

    def on_unmount(self) -> None:
        """Free every kitty image of this widget."""
        self._remove_graphics(free=True)

    # ------------------------------------------------------------------ encoding
    def _bottom_reserve(self) -> int:
        """Rows to keep free at the bottom: a sixel must not touch the screen's last row."""
        if self.renderer != "sixel":
            return 0
        try:
            screen_h = self.screen.size.height
        except Exception:  # noqa: BLE001 - no screen yet
            return 0
        return max(0, self.content_region.bottom - (screen_h - 1))

    def _background(self) -> tuple[int, int, int]:
        bg = self.styles.background
        return (bg.r, bg.g, bg.b) if bg.a > 0 else (0, 0, 0)

    def _make_request(self) -> FrameRequest | None:
        if self._request is None or not self.is_mounted:
            return None
        w, h = self.content_size
        if w <= 0 or h <= 0:
            return None
        key, picture, aspect, view, shapes = self._request
        renderer = "halfblock" if self.renderer == "unicode" else self.renderer
        return FrameRequest(
            next(self._seq),
            key,
            picture,
            aspect,
            view,
            shapes,
            (w, h),
            renderer,
            self.terminal.colors,
            (self.terminal.cell_px[0], self.terminal.cell_px[1]),
            self._bottom_reserve(),
            self._background(),
        )

    def _schedule(self) -> None:
        req = self._make_request()
        if req is None:
            self._run_on_shown()  # nothing to wait for (not mounted or no room yet)
            return
        self._latest_seq = req.seq
        cached = self._cache.get(req.cache_key())
        if cached is not None:
            self._install(*cached)
            return
        if self._busy:
            self._pending.put(req)
            return
        self._start(req)

    def _start(self, req: FrameRequest) -> None:
        self._busy = True
        self.run_worker(
            lambda: self._encode_thread(req),
            thread=True,
            group="picture-encode",
            exit_on_error=False,
            exclusive=False,
        )

    def _encode_thread(self, req: FrameRequest) -> None:
        try:
            frame: EncodedFrame | Exception = encode(req, self.terminal, self._kitty_sequences)
        except Exception as exc:  # noqa: BLE001 - reported in the pane and the log
            from tui_dicom.core.logging import log_exception

            log_exception("encoding the picture failed")
            frame = exc
        with contextlib.suppress(RuntimeError):  # the app closed meanwhile
            self.app.call_from_thread(self._encoded, req, frame)

    def _encoded(self, req: FrameRequest, frame: EncodedFrame | Exception) -> None:
        self._busy = False
        if isinstance(frame, Exception):
            self.error = f"cannot draw the picture: {frame}"
            if req.seq == self._latest_seq:
                self._run_on_shown()
        else:
            self.error = None
            entry = (frame, frame_strips(frame))
            self._cache.put(req.cache_key(), entry)
            if req.seq == self._latest_seq:
                self._install(*entry)
        pending = self._pending.take(0)
        if pending is not None and pending.seq == self._latest_seq:
            cached = self._cache.get(pending.cache_key())
            if cached is not None:
                self._install(*cached)
            else:
                self._start(pending)

    # ------------------------------------------------------------------ drawing
    def _install(self, frame: EncodedFrame, strips: list[Strip]) -> None:
        """Make ``frame`` the one on screen, repaint what changed and run the :meth:`show` callbacks.

        Kitty and sixel pictures are drawn entirely from the first line of the picture (the other
        cells are blanks or cursor moves): when the new frame covers the same cells as the one on
        screen, only that line is repainted.
        """
        old = self._frame
        self._frame = frame
        self._strips = strips
        if self._same_cells(old, frame):
            x, y, w, _h = frame.layout.cells
            self.refresh(Region(x, y, w, 1))
        else:
            self.refresh()
        if self._announced is not frame:
            self.call_after_refresh(self._announce)
        self._run_on_shown()

    def _same_cells(self, old: EncodedFrame | None, new: EncodedFrame) -> bool:
        """True if ``new`` is a graphics frame drawn over exactly the text cells of ``old``."""
        if old is None or old is new or new.request.renderer == "halfblock":
            return False
        if (old.request.renderer, old.request.size, old.layout.cells) != (
            new.request.renderer,
            new.request.size,
            new.layout.cells,
        ) or old.payload is None:
            return False
        try:
            return self.screen.is_active and not self._overlap
        except Exception:  # noqa: BLE001 - no screen
            return False

    def _announce(self) -> None:
        """Post :class:`Displayed` for the frame on screen, once per frame (after its refresh)."""
        frame = self._frame
        if frame is None or self._announced is frame:
            return
        self._announced = frame
        x, y, w, h = frame.layout.cells
        region = self.content_region
        # posted to the screen, which handles it: the containers between have no handler for it, and
        # each hop through one cost ~0.08 ms of every slice step
        self.screen.post_message(
            PictureView.Displayed(
                self,
                (region.x + x, region.y + y, w, h),
                frame.layout.cell_px,
                frame.request.renderer,
                frame.request.key,
                frame.shown,
                frame.layout,
            )
        )

    def _kitty_sequences(self, pic: KittyPicture) -> str:
        """Transmit (first time only) and place a kitty picture; free evicted images (at write time)."""
        at = None
        if self.terminal.tmux:  # inside tmux the cursor is not where the pane's cell is
            ox, oy = self.terminal.tmux_offset
            region = self.region
            at = (ox + region.x + pic.cells[0], oy + region.y + pic.cells[1])
        return self._kitty.show(pic, at)

    def _kitty_unplace(self) -> str:
        return self._kitty.unplace()

    def _remove_graphics(self, free: bool = False) -> None:
        """Delete kitty placements (and images if ``free``) right now through the driver."""
        seq = self._kitty.free_all() if free else self._kitty.unplace()
        if seq and self.is_attached:
            write_now(self.app, seq)

    def _overlapping(self) -> frozenset[int]:
        """Ids of widgets drawn over this one (toasts, tooltips), to repaint when they change."""
        return widgets_over(self)

    def render_lines(self, crop: Region) -> list[Strip]:
        """Our pre-encoded strips (or ordinary ones when the screen is behind a modal)."""
        frame = self._frame
        width, height = self.size
        if frame is None or frame.request.size != (width, height):
            prefix = self._kitty_unplace()
            blank = Strip(
                [Segment(" " * width, Style(bgcolor=RichColor.from_rgb(*self._background())))], width
            )
            lines = [blank] * height
            if prefix and lines:
                lines[0] = Strip([Segment(prefix, None, ((ControlType.BELL,),)), *blank], width)
            return [line.crop(crop.x, crop.right) for line in lines[crop.y : crop.bottom]]
        try:
            active = self.screen.is_active
        except Exception:  # noqa: BLE001 - no screen
            active = False
        if not active:
            lines = plain_strips(frame, self._kitty_unplace())
        else:
            lines = self._strips
            if frame.request.renderer != "halfblock":
                overlap = self._overlapping()
                if overlap != self._overlap:
                    self._overlap = overlap
                    self.call_after_refresh(self.refresh)
                if overlap and frame.request.renderer == "kitty":
                    # a kitty picture is drawn over the text layer: while a notification covers it,
                    # show its half-block twin so the notification stays readable
                    lines = plain_strips(frame, self._kitty_unplace())
        return [line.crop(crop.x, crop.right) for line in lines[crop.y : crop.bottom]]

    def render(self) -> RenderResult:  # pragma: no cover - render_lines is overridden
        """Unused (render_lines draws everything)."""
        return ""

    def get_content_width(self, container: Size, viewport: Size) -> int:
        """Fill whatever we get."""
        return container.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """Fill whatever we get."""
        return container.height

    # ------------------------------------------------------------------ mouse
    def on_mouse_down(self, event: events.MouseDown) -> None:
        """Post :class:`Clicked`; start a drag."""
        self._drag_start = (event.x, event.y)
        self._drag_image = self.image_coords(event.x, event.y)
        self.capture_mouse()
        self.post_message(self.Clicked(self, event, self._drag_image))
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        """Post :class:`Dragged` (button held) or :class:`Hovered`."""
        image = self.image_coords(event.x, event.y)
        if self._drag_start is not None and event.button:
            self.post_message(self.Dragged(self, event, image, self._drag_start, self._drag_image))
        else:
            self.post_message(self.Hovered(self, event, image))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        """Post :class:`Released`; end the drag."""
        self.release_mouse()
        self._drag_start = None
        self.post_message(self.Released(self, event, self.image_coords(event.x, event.y)))
        event.stop()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        """Post :class:`Wheel` (+1)."""
        self.post_message(self.Wheel(self, event, self.image_coords(event.x, event.y), 1))
        event.stop()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        """Post :class:`Wheel` (-1)."""
        self.post_message(self.Wheel(self, event, self.image_coords(event.x, event.y), -1))
        event.stop()


__all__ = ["FrameStrip", "PictureView"]

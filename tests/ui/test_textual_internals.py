"""Canary for the Textual internals the picture widget uses through ``tui_dicom/ui/driver.py``.

Each test fails loudly, naming the internal, when the installed Textual changes it: then update
``tui_dicom/ui/driver.py`` (the only module that may use them). The driver's input-loop internals
are checked in ``test_reply_filter.py``.
"""

from __future__ import annotations

import inspect
from typing import Any

from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widgets import Label, Static

from tui_dicom.ui.driver import LazyStrip, widgets_over, write_now


class _Lazy(LazyStrip):
    def __init__(self, text: str) -> None:
        self.built = 0
        self._text = text
        super().__init__(len(text))

    def build_segments(self) -> list[Segment]:
        self.built += 1
        return [Segment(self._text)]


def test_strip_keeps_its_segments_in_the_segments_slot() -> None:
    """``LazyStrip`` puts a property on ``Strip._segments``: Strip must still set and read it."""
    assert "_segments" in Strip.__slots__, "Strip no longer has a _segments slot"
    assert "self._segments = list(segments)" in inspect.getsource(Strip.__init__)
    for method in (Strip.__iter__, Strip.crop, Strip.divide, Strip.apply_style):
        assert "self._segments" in inspect.getsource(method), (
            f"Strip.{method.__name__} no longer reads _segments"
        )


def test_lazy_strip_builds_segments_only_when_textual_needs_them() -> None:
    strip = _Lazy("abcdef")
    assert strip.built == 0 and strip.cell_length == 6  # constructing does not build
    assert "".join(s.text for s in strip) == "abcdef" and strip.built == 1
    assert strip.crop(1, 3).text == "bc"  # Strip's own crop works on the built segments
    assert [p.text for p in strip.divide([2, 6])] == ["ab", "cdef"]
    assert strip.built == 1  # built once


def test_app_driver_is_where_write_now_writes() -> None:
    """``write_now`` uses ``App._driver`` with ``write`` and ``flush`` and skips headless apps."""
    assert "self._driver" in inspect.getsource(App.__init__), "App no longer has _driver"
    from textual.driver import Driver

    assert callable(Driver.write) and callable(Driver.flush)

    written: list[str] = []

    class _FakeDriver:
        def write(self, text: str) -> None:
            written.append(text)

        def flush(self) -> None:
            written.append("<flush>")

    class _Probe(App[None]):
        @property
        def is_headless(self) -> bool:
            return False

    app = _Probe()
    app._driver = _FakeDriver()  # type: ignore[assignment]
    write_now(app, "\x1b_Ga=d\x1b\\")
    assert written == ["\x1b_Ga=d\x1b\\", "<flush>"]
    app._driver = None
    write_now(app, "more")  # not running: nothing, no error
    assert written == ["\x1b_Ga=d\x1b\\", "<flush>"]


async def test_compositor_lists_visible_widgets_front_to_back() -> None:
    """``widgets_over`` reads ``Screen._compositor.visible_widgets``: a notification over a widget is
    found, and nothing is found once it is gone."""

    class _App(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("x" * 2000, id="under")
            yield Label("status")

    app = _App()
    async with app.run_test(size=(60, 20), notifications=True) as pilot:
        under = app.query_one("#under", Static)
        visible: Any = app.screen._compositor.visible_widgets
        assert under in visible and isinstance(visible[under], tuple), "visible_widgets changed shape"
        assert widgets_over(under) == frozenset()
        app.notify("over the widget", timeout=30)
        for _ in range(100):
            await pilot.pause(0.02)
            if widgets_over(under):
                break
        assert widgets_over(under), "a notification over the widget was not found in visible_widgets"
        app.clear_notifications()
        for _ in range(100):
            await pilot.pause(0.02)
            if not widgets_over(under):
                break
        assert widgets_over(under) == frozenset()


def test_compositor_internals_the_sparse_compositor_overrides() -> None:
    """``SparseCompositor`` overrides ``render_partial_update`` and ``_get_renders`` and reads
    ``_dirty_regions``; ``use_sparse_compositor`` replaces ``Screen._compositor``."""
    from textual._compositor import Compositor
    from textual.screen import Screen

    assert "self._compositor = Compositor()" in inspect.getsource(Screen.__init__)
    partial = inspect.getsource(Compositor.render_partial_update)
    assert "self._dirty_regions" in partial and "self._render_chops(" in partial
    chops = inspect.getsource(Compositor._render_chops)
    assert "self._get_renders(crop)" in chops, "_render_chops no longer asks _get_renders"
    assert "for region, clip, strips in renders" in chops, "_get_renders yields a different shape"
    assert "intersection(region, clip)" in chops, "a render's lines are no longer placed at region ∩ clip"


async def test_tree_internals_relabel_uses() -> None:
    """``relabel`` sets ``TreeNode._label``/``_updates`` and repaints with ``Tree._tree_lines`` and
    ``Tree._refresh_line``: the new label is what the tree then renders, the other lines stay."""
    from rich.text import Text
    from textual.widgets import Tree

    from tui_dicom.ui.driver import relabel

    assert "self._updates," in inspect.getsource(Tree._render_line), "the line cache key changed"

    class _App(App[None]):
        def compose(self) -> ComposeResult:
            tree: Tree[int] = Tree("root")
            tree.show_root = False
            for i in range(5):
                tree.root.add_leaf(f"row {i}", data=i)
            yield tree

    app = _App()
    async with app.run_test(size=(40, 10)) as pilot:
        tree = app.query_one(Tree)
        await pilot.pause()
        nodes = list(tree.root.children)
        relabel(tree, {nodes[1]: Text("one changed"), nodes[3]: Text("three changed")})
        await pilot.pause()
        lines = [strip.text for strip in app.screen._compositor.render_strips()]
        assert "one changed" in lines[1] and "three changed" in lines[3]
        assert "row 2" in lines[2] and str(nodes[1].label) == "one changed"
        # a label shown before gets its line-cache version back (the rendered line is found again) ...
        first = nodes[1]._updates
        relabel(tree, {nodes[1]: Text("one again")})
        await pilot.pause()
        assert nodes[1]._updates != first
        relabel(tree, {nodes[1]: Text("one changed")})
        await pilot.pause()
        assert nodes[1]._updates == first
        lines = [strip.text for strip in app.screen._compositor.render_strips()]
        assert "one changed" in lines[1] and "one again" not in lines[1]
        # ... unless Textual changed the node since (selection, hover, expansion bump _updates)
        nodes[1]._selected = True
        relabel(tree, {nodes[1]: Text("one again")})
        relabel(tree, {nodes[1]: Text("one changed")})
        assert nodes[1]._updates not in (first, first + 1)
        await pilot.pause()
        lines = [strip.text for strip in app.screen._compositor.render_strips()]
        assert "one changed" in lines[1]


async def test_style_memo_keeps_styles_across_repaints_until_a_style_changes() -> None:
    """``StyleMemo`` keys its styles on ``RenderStyles._cache_key`` of the widget, its ancestors and
    its component classes: a repaint keeps them (the same objects), and a changed ancestor style,
    focus (``Tree:focus > .tree--cursor``) or inline style gives what Textual computes afresh."""
    from textual.containers import Vertical
    from textual.widget import Widget
    from textual.widgets import Tree

    from tui_dicom.ui.driver import StyleMemo

    assert "_cache_key" in inspect.getsource(type(Static().styles)), "RenderStyles lost _cache_key"
    from textual.dom import DOMNode

    assert "self._component_styles[name]" in inspect.getsource(DOMNode.get_component_styles)

    class _Tree(Tree[int], StyleMemo):
        pass

    class _App(App[None]):
        def compose(self) -> ComposeResult:
            with Vertical(id="box"):
                yield _Tree("root", id="tree")
            yield Static("other", id="other")

    def fresh(tree: _Tree) -> list[Any]:
        tree._rich_style_cache.clear()
        return [
            Widget.rich_style.fget(tree),  # type: ignore[attr-defined]
            *(
                Widget.get_component_rich_style(tree, name, partial=partial)
                for name in ("tree--cursor", "tree--label", "tree--guides")
                for partial in (False, True)
            ),
        ]

    def memo(tree: _Tree) -> list[Any]:
        return [
            tree.rich_style,
            *(
                tree.get_component_rich_style(name, partial=partial)
                for name in ("tree--cursor", "tree--label", "tree--guides")
                for partial in (False, True)
            ),
        ]

    app = _App()
    async with app.run_test(size=(40, 10)) as pilot:
        tree = app.query_one(_Tree)
        app.query_one("#other", Static).focus()
        await pilot.pause()
        first = memo(tree)
        assert first == fresh(tree)
        tree.refresh()
        again = memo(tree)
        assert all(a is b for a, b in zip(first, again, strict=True)), "a repaint recomputed the styles"
        app.query_one("#box").styles.text_style = "italic"  # inherited: every style of the tree changes
        await pilot.pause()
        assert memo(tree) == fresh(tree) and memo(tree)[0] != first[0]
        tree.focus()
        await pilot.pause()
        assert memo(tree) == fresh(tree) and memo(tree)[1] != first[1]
        tree.styles.color = "green"
        await pilot.pause()
        assert memo(tree) == fresh(tree)


async def test_annotation_rows_are_what_textual_renders() -> None:
    """``AnnotationBar.render_line`` builds a row as one segment: the same segments (text, style and
    selection offset) as Textual's rendering of the bar's text, wide characters included."""
    from textual.widget import Widget

    from tui_dicom.ui.widgets.annotations import AnnotationBar

    class _App(App[None]):
        def compose(self) -> ComposeResult:
            yield AnnotationBar()

    app = _App()
    async with app.run_test(size=(60, 10)) as pilot:
        bar = app.query_one(AnnotationBar)
        for lines in (
            (("Loc 12.5 mm  Thk 5 mm", "P", "Zoom 1.2"), ("15/28", "", "W:80 L:40 (brain)")),
            (("", "", ""), ("", "", "")),
            (("古" * 40, "A", "right"), ("ﾌﾙﾊｼ ﾀｲﾁ=古橋 大地", "", "é")),
        ):
            bar.lines = lines
            await pilot.pause()
            for y in range(2):
                ours = list(bar.render_line(y))
                assert len(ours) == 1
                assert ours == list(Widget.render_line(bar, y))

"""The tag inspector: every element of the shown instance, sequences as expandable nodes.

``/`` filters incrementally (keyword, name, tag number in any form, value), ``n``/``N`` jump between
matches, ``y`` copies the selected value with OSC 52, ``V`` shows only the tags that vary in the series.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from tui_dicom.core.inspector.tags import TagRow
from tui_dicom.core.safe import safe_text
from tui_dicom.ui.driver import StyleMemo, relabel
from tui_dicom.ui.keys import PANE_KEYS
from tui_dicom.ui.widgets.paint_hold import blank_lines, hold_paint

#: tags whose values identify the patient (masked in privacy mode)
IDENTIFYING_TAGS = frozenset(
    {
        0x00080050,  # AccessionNumber
        0x00080080,  # InstitutionName
        0x00080081,  # InstitutionAddress
        0x00080090,  # ReferringPhysicianName
        0x00081040,  # InstitutionalDepartmentName
        0x00081048,  # PhysiciansOfRecord
        0x00081050,  # PerformingPhysicianName
        0x00081060,  # NameOfPhysiciansReadingStudy
        0x00081070,  # OperatorsName
        0x00200010,  # StudyID
        0x00321032,  # RequestingPhysician
        0x00380010,  # AdmissionID
        0x00400006,  # ScheduledPerformingPhysicianName
    }
)
MASK = "***"


def is_identifying(tag: int) -> bool:
    """True for patient-identifying elements: group 0010 and the tags in :data:`IDENTIFYING_TAGS`."""
    return (tag >> 16) == 0x0010 or tag in IDENTIFYING_TAGS


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def row_label(row: TagRow, privacy: bool, name_width: int = 24) -> Text:
    """``(0010,0010) PatientName          PN Doe^John`` as inert text (keyword column ``name_width`` wide)."""
    group, elem = row.tag >> 16, row.tag & 0xFFFF
    if getattr(row, "is_item", False):
        return Text(safe_text(row.value) or "item", style="dim")
    text = Text(f"({group:04X},{elem:04X}) ", style="cyan")
    name = safe_text(row.keyword or row.name or "")
    if row.private_creator:
        name = f"{name} [{safe_text(row.private_creator)}]"
    text.append(
        f"{_cut(name, name_width):<{name_width}} ", style="bold" if not row.private_creator else "magenta"
    )
    text.append(f"{row.vr or '--':<3}", style="dim")
    value = MASK if privacy and is_identifying(row.tag) else safe_text(row.value)
    text.append(value)
    return text


class TagTree(Tree[int], StyleMemo):
    """The tree of tag rows; node data is the row index. Its styles are kept across repaints
    (:class:`~tui_dicom.ui.driver.StyleMemo`): a slice step repaints a few rows."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    #: filled but painted blank (see :meth:`TagInspector.hold_paint`)
    paint_held = False

    def render_lines(self, crop: Region) -> list[Strip]:
        """The rows, or blank lines while painting is held."""
        if self.paint_held:
            return blank_lines(self, crop)
        return super().render_lines(crop)


def clipboard_feedback(value: str, name: str, env: Mapping[str, str] | None = None) -> str:
    """What ``y`` says: what was sent, not that the clipboard changed.

    OSC 52 asks the terminal to set its clipboard; the app cannot know whether it did (many terminals
    ask first or refuse, and tmux forwards it only with ``set -g set-clipboard on``).
    """
    env = os.environ if env is None else env
    text = f"Sent {len(value)} chars of {safe_text(name)} to the clipboard (OSC 52)"
    if env.get("TMUX"):
        text += "; inside tmux it reaches the terminal only with: set -g set-clipboard on"
    return text


class TagInspector(Vertical):
    """Rows of :class:`tui_dicom.core.inspector.tags.TagRow` shown as a tree, with a filter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *PANE_KEYS,
        Binding("slash", "search", "Search tags"),
        Binding("n", "next_match", "Next match", show=False),
        Binding("N", "previous_match", "Prev match", show=False),
        Binding("y", "copy_value", "Copy value"),
        Binding("V", "toggle_varying", "Varies in series"),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]

    privacy: reactive[bool] = reactive(False)
    varying_only: reactive[bool] = reactive(False)

    @dataclass
    class VaryingRequested(Message):
        """The user asked for the tags that vary in the series (the screen computes them in a worker)."""

        inspector: TagInspector
        """The inspector asking."""

        @property
        def control(self) -> TagInspector:
            """The inspector."""
            return self.inspector

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: list[TagRow] = []
        self._varying_paths: set[tuple[int, ...]] | None = None
        self._error = ""
        self._matches: list[int] = []
        self._match_pos = -1
        self._row_nodes: dict[int, TreeNode[int]] = {}
        self._status: tuple[str, str] = ("", "")
        # the children, kept: a slice step reads the filter and relabels the tree, and a DOM query for
        # each cost more than the relabelling of a row
        self._filter = Input(placeholder="filter: keyword, (gggg,eeee), value…", id="tag-filter")
        self._tree: TagTree = TagTree("tags", data=-1, id="tag-tree")
        self._tree.show_root = False
        self._tree.guide_depth = 2

    def compose(self) -> ComposeResult:
        """Filter input (hidden until ``/``), the tree, a status line."""
        yield self._filter
        yield self._tree
        yield Static("", id="tag-status")

    def on_mount(self) -> None:
        """Hide the filter until it is asked for."""
        self._filter.display = False

    @property
    def tag_tree(self) -> TagTree:
        """The tree widget (not ``tree``: that is Textual's debug view of every DOM node)."""
        return self._tree

    # ----------------------------------------------------------------------------- content

    def show_rows(self, rows: list[TagRow], error: str = "") -> None:
        """Show ``rows`` (tag rows of one instance), or ``error`` when the header could not be read.

        Within a series the next instance usually has the very same elements: then only the labels
        whose values changed are redrawn (cursor and open sequences stay), instead of a rebuild.
        """
        old = self._rows
        self._rows = rows
        self._error = error
        same_shape = (
            not error
            and self._row_nodes
            and len(old) == len(rows)
            and all(a.path == b.path and a.vr == b.vr for a, b in zip(old, rows, strict=True))
        )
        if not same_shape:
            self._rebuild()
            return
        width = self._name_width()
        labels: dict[TreeNode[int], Text] = {}
        for i, (before, after) in enumerate(zip(old, rows, strict=True)):
            if before.value != after.value:
                node = self._row_nodes.get(i)
                if node is not None:
                    labels[node] = row_label(after, self.privacy, width)
        relabel(self.tag_tree, labels)  # one pass; only the changed rows on screen are repainted
        if self.filter_text:
            self._rebuild()  # a value may now match, or stop matching, the filter
        else:
            self._update_status()

    def show_varying(self, paths: list[tuple[int, ...]]) -> None:
        """Paths of the elements that vary between the instances of the series (used when the toggle is on)."""
        self._varying_paths = set(paths)
        if self.varying_only:
            self._rebuild()

    @property
    def filter_text(self) -> str:
        """The current filter (empty: no filter)."""
        return self._filter.value.strip()

    def _selected(self) -> list[int] | None:
        """Row indices passing the varying toggle and the filter (None: every row)."""
        from tui_dicom.core.inspector.tags import filter_rows, indices_for_paths

        rows = self._rows
        selected: list[int] | None = None
        if self.varying_only:
            selected = indices_for_paths(rows, self._varying_paths or ())
        query = self.filter_text
        if query:
            matches = filter_rows(rows, query)
            if selected is not None:
                allowed = set(selected)
                matches = [i for i in matches if i in allowed]
            selected = matches
        return selected

    def _rebuild(self) -> None:
        from tui_dicom.core.inspector.tags import with_ancestors

        rows = self._rows
        tree = self.tag_tree
        tree.clear()
        selected = self._selected()
        self._matches = list(selected) if (selected is not None and self.filter_text) else []
        # matches inside sequences are shown with their parents
        keep: set[int] | None = None if selected is None else set(with_ancestors(rows, selected))
        nodes: dict[int, TreeNode[int]] = {}
        for i, row in enumerate(rows):
            if keep is not None and i not in keep:
                continue
            parent_node = nodes.get(row.parent, tree.root) if row.parent is not None else tree.root
            label = row_label(row, self.privacy, self._name_width())
            if row.is_sequence or row.is_item:
                node = parent_node.add(label, data=i, expand=keep is not None)
            else:
                node = parent_node.add_leaf(label, data=i)
            nodes[i] = node
        self._row_nodes = nodes
        self._match_pos = -1
        self._update_status()

    def hold_paint(self, hold: bool) -> None:
        """Paint the tag rows blank while ``hold`` (they still fill and keep their columns)."""
        hold_paint(self._tree, hold)

    def _name_width(self) -> int:
        """Keyword column width: narrower in a narrow panel so values stay visible."""
        width = self.size.width or 80
        return max(12, min(28, (width - 24) // 2))

    def on_resize(self) -> None:
        """Re-layout the columns for the new width."""
        if self._rows:
            self._rebuild()

    def _update_status(self) -> None:
        """The line under the tree (updated only when its text changes: an update costs a layout pass)."""
        rows = self._rows
        if self._error:
            self._set_status(self._error, "bold red")
            return
        parts = [f"{sum(1 for r in rows if r.depth == 0)} elements"]
        if self.varying_only:
            if self._varying_paths is None:
                parts.append("computing what varies in the series…")
            else:
                parts.append(f"{len(self._selected() or [])} vary in series")
        if self.filter_text:
            n = len(self._matches)
            parts.append(f"{n} match{'' if n == 1 else 'es'} for “{safe_text(self.filter_text)}”")
        self._set_status(" · ".join(parts), "dim")

    def _set_status(self, text: str, style: str) -> None:
        if self._status != (text, style):
            self._status = (text, style)
            self.query_one("#tag-status", Static).update(Text(text, style=style), layout=False)  # one row

    # ----------------------------------------------------------------------------- actions

    def action_search(self) -> None:
        """Show and focus the filter input."""
        box = self._filter
        box.display = True
        box.focus()

    def action_clear_search(self) -> None:
        """Clear the filter and hide it."""
        box = self._filter
        box.value = ""
        box.display = False
        self._rebuild()
        self.tag_tree.focus()

    @on(Input.Changed, "#tag-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._rebuild()

    @on(Input.Submitted, "#tag-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.tag_tree.focus()
        self.action_next_match()

    def _goto_match(self, step: int) -> None:
        if not self._matches:
            self.app.bell()
            return
        self._match_pos = (self._match_pos + step) % len(self._matches)
        node = self._row_nodes.get(self._matches[self._match_pos])
        if node is not None:
            self.tag_tree.move_cursor(node)
            self.tag_tree.scroll_to_node(node)

    def action_next_match(self) -> None:
        """Move to the next match."""
        self._goto_match(1)

    def action_previous_match(self) -> None:
        """Move to the previous match."""
        self._goto_match(-1)

    def action_copy_value(self) -> None:
        """Copy the selected element's value to the clipboard (OSC 52; works over SSH)."""
        node = self.tag_tree.cursor_node
        rows = self._rows
        if node is None or node.data is None or not 0 <= node.data < len(rows):
            return
        row = rows[node.data]
        value = MASK if self.privacy and is_identifying(row.tag) else safe_text(row.value)
        self.app.copy_to_clipboard(value)
        self.notify(clipboard_feedback(value, row.keyword or hex(row.tag)), markup=False, timeout=4)

    def action_toggle_varying(self) -> None:
        """Toggle "only tags that vary in this series"."""
        self.varying_only = not self.varying_only

    def watch_varying_only(self, varying: bool) -> None:
        """Ask for the varying tags when switched on; rebuild either way."""
        if varying:
            self._varying_paths = None
            self.post_message(self.VaryingRequested(self))
        if self.is_mounted:
            self._rebuild()

    def watch_privacy(self, _privacy: bool) -> None:
        """Re-label with values masked or shown."""
        if self.is_mounted:
            self._rebuild()

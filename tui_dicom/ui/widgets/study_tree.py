"""The study tree: Patient → Study → Series → Image, filled progressively, with a Problems branch."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui_dicom.core.hierarchy.model import Hierarchy, IndexProblem, Patient, Series, Study
from tui_dicom.core.safe import safe_text
from tui_dicom.ui.keys import PANE_KEYS
from tui_dicom.ui.widgets.paint_hold import blank_lines, hold_paint

MASK = "***"
#: narrowest tree, and the columns always left for the image and the tags
MIN_WIDTH, KEEP_FOR_OTHERS = 20, 30
#: columns per press of ``<`` / ``>``
WIDTH_STEP = 4
#: widest the tree grows by itself to fit its labels (fraction of the screen)
AUTO_FRACTION = 0.3
#: problems listed in the tree (the rest are counted in one node; ``tui-dicom ls`` lists them all)
MAX_PROBLEMS_SHOWN = 500


_Item = TypeVar("_Item")

NodeKind = Literal["root", "patient", "study", "series", "image", "problems", "problem"]


@dataclass(frozen=True)
class NodeData:
    """What a tree node stands for: the hierarchy object of its kind ("image" nodes: their series and
    slice index; the problems heading and the "… more" entry: None)."""

    kind: NodeKind
    obj: Patient | Study | Series | IndexProblem | None
    index: int = 0  # slice index for "image" nodes

    @property
    def patient(self) -> Patient | None:
        """The patient of a patient node."""
        return self.obj if isinstance(self.obj, Patient) else None

    @property
    def study(self) -> Study | None:
        """The study of a study node."""
        return self.obj if isinstance(self.obj, Study) else None

    @property
    def series(self) -> Series | None:
        """The series of a series or image node."""
        return self.obj if isinstance(self.obj, Series) else None

    @property
    def problem(self) -> IndexProblem | None:
        """The problem of a problem node."""
        return self.obj if isinstance(self.obj, IndexProblem) else None


def fmt_date(value: str) -> str:
    """``20180112`` → ``2018-01-12`` (other forms unchanged)."""
    value = value.strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def patient_label(patient: Patient, privacy: bool) -> Text:
    """The label of a patient node (masked in privacy mode)."""
    if privacy:
        return Text(f"{MASK}  ({len(patient.studies)} studies)", style="bold")
    name = safe_text(patient.patient_name.replace("^", " ").strip()) or "(no name)"
    pid = safe_text(patient.patient_id) or "?"
    text = Text(name, style="bold")
    text.append(f"  {pid}", style="dim")
    return text


def study_label(study: Study) -> Text:
    """``2018-01-12 LSPINE`` for a study node."""
    text = Text(fmt_date(safe_text(study.study_date)) or "(no date)")
    if study.study_description:
        text.append("  " + safe_text(study.study_description))
    return text


def series_label(series: Series) -> Text:
    """Modality, number, description and image count."""
    return Text(safe_text(series.label()))


def _cells(label: str | Text) -> int:
    """Terminal columns of a node label."""
    return label.cell_len if isinstance(label, Text) else Text(label).cell_len


class StudyTree(Tree[NodeData]):
    """Tree over the hierarchy. Posts :class:`SeriesChosen` / :class:`SliceChosen` when highlighted."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *PANE_KEYS,
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("greater_than_sign", "resize(4)", "Wider tree (or drag its border)", show=False),
        Binding("less_than_sign", "resize(-4)", "Narrower tree", show=False),
    ]

    privacy: reactive[bool] = reactive(False)

    @dataclass
    class SeriesChosen(Message):
        """A series node was highlighted: show its middle slice."""

        series: Series
        """The series."""

    @dataclass
    class SliceChosen(Message):
        """An image node was highlighted: show that slice."""

        series: Series
        """The series the image belongs to."""
        index: int
        """The slice index within the series."""

    @dataclass
    class ProblemChosen(Message):
        """A problem entry was selected (Enter or click): show its full path and reason."""

        problem: IndexProblem
        """The problem."""
        position: int
        """1-based position among the problems."""
        total: int
        """How many problems there are."""

    @dataclass
    class StudyExpanded(Message):
        """A study node was expanded (an archive queries its series then)."""

        study: Study
        """The study."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("DICOM", data=NodeData("root", None), **kwargs)
        #: width chosen by the user (keys or dragging the border); None: fit the labels
        self.user_width: int | None = None
        self._auto_width: int | None = None
        self._dragging = False
        self.show_root = False
        self.guide_depth = 3
        self._node_by_key: dict[Hashable, TreeNode[NodeData]] = {}
        self._problems: TreeNode[NodeData] | None = None
        self._problems_shown = 0
        self._problems_more: TreeNode[NodeData] | None = None
        self._hierarchy = Hierarchy()
        self._first_shown = False
        #: which series to select at start (e.g. the one from the first path given); None: the first
        self.preferred: Callable[[Series], bool] | None = None
        #: laid out and filled, but painted blank (see :meth:`hold_paint`)
        self.paint_held = False

    def hold_paint(self, hold: bool) -> None:
        """Paint the tree blank while ``hold`` (it still fills, moves its cursor and keeps its width)."""
        hold_paint(self, hold)

    def render_lines(self, crop: Region) -> list[Strip]:
        """The tree's lines, or blank ones while painting is held."""
        if self.paint_held:
            return blank_lines(self, crop)
        return super().render_lines(crop)

    # -------------------------------------------------------------------------------- filling

    def _sync(
        self,
        parent: TreeNode[NodeData],
        items: Sequence[_Item],
        key: Callable[[_Item], Hashable],
        make: Callable[[_Item], tuple[Text, NodeData, bool]],
    ) -> list[tuple[TreeNode[NodeData], _Item]]:
        """Make ``parent``'s children match ``items`` (in order), reusing existing nodes; returns each
        node with its item."""
        result: list[tuple[TreeNode[NodeData], _Item]] = []
        for position, item in enumerate(items):
            k = key(item)
            label, data, expandable = make(item)
            node = self._node_by_key.get(k)
            if node is None or node.parent is not parent:
                siblings = list(parent.children)
                before = siblings[position] if position < len(siblings) else None
                if before is not None:
                    node = parent.add(label, data, before=before, allow_expand=expandable)
                else:
                    node = parent.add(label, data, allow_expand=expandable)
                self._node_by_key[k] = node
            else:
                node.data = data
                node.set_label(label)
            result.append((node, item))
        return result

    def update_hierarchy(self, hierarchy: Hierarchy) -> None:
        """Show ``hierarchy`` (a newer snapshot replaces the older one; open nodes stay open)."""
        self._hierarchy = hierarchy
        root = self.root
        for p_node, patient in self._sync(
            root,
            hierarchy.patients,
            key=lambda p: ("P", p.patient_id, p.patient_name),
            make=lambda p: (patient_label(p, self.privacy), NodeData("patient", p), True),
        ):
            for s_node, study in self._sync(
                p_node,
                patient.studies,
                key=lambda s: ("S", s.study_instance_uid),
                make=lambda s: (study_label(s), NodeData("study", s), True),
            ):
                for se_node, _series in self._sync(
                    s_node,
                    study.series,
                    key=lambda se: ("SE", se.series_instance_uid),
                    make=lambda se: (series_label(se), NodeData("series", se), True),
                ):
                    if se_node.is_expanded:
                        self._fill_images(se_node)
        self._update_problems(hierarchy.errors)
        self._fit_width()
        if not self._first_shown:
            self._show_first_series()

    # -------------------------------------------------------------------------------- width

    def _width_limits(self) -> tuple[int, int]:
        try:
            screen_width = self.screen.size.width
        except Exception:  # noqa: BLE001 - not on a screen yet
            screen_width = 0
        return MIN_WIDTH, max(MIN_WIDTH, (screen_width or 120) - KEEP_FOR_OTHERS)

    def set_width(self, cells: int) -> None:
        """Make the tree ``cells`` columns wide (border included), within the screen; the user's choice."""
        low, high = self._width_limits()
        self.user_width = min(max(int(cells), low), high)
        self.styles.max_width = high  # the stylesheet's fraction of the screen no longer applies
        self.styles.width = self.user_width

    def action_resize(self, delta: int) -> None:
        """``>`` / ``<``: widen or narrow the tree."""
        self.set_width(self.outer_size.width + delta)

    def _fit_width(self) -> None:
        """Until the user picks a width: wide enough for the patient, study and series labels (patient
        IDs are not cut), up to :data:`AUTO_FRACTION` of the screen. Grows only, so the picture beside
        it does not jump back and forth while the index fills."""
        if self.user_width is not None:
            return
        widest = 0
        for p_node in self.root.children:
            if p_node.data is None or p_node.data.kind != "patient":
                continue
            widest = max(widest, _cells(p_node.label) + 2)
            for s_node in p_node.children:
                widest = max(widest, _cells(s_node.label) + 2 + self.guide_depth)
                for se_node in s_node.children:
                    widest = max(widest, _cells(se_node.label) + 2 + 2 * self.guide_depth)
        try:
            screen_width = self.screen.size.width
        except Exception:  # noqa: BLE001 - not on a screen yet
            return
        want = min(widest + 3, int(screen_width * AUTO_FRACTION))  # + scrollbar and border
        if want > self.outer_size.width and want != self._auto_width:
            self._auto_width = want
            self.styles.width = want

    def on_mouse_down(self, event: events.MouseDown) -> None:
        """A press on the tree's right border starts resizing it."""
        if event.button == 1 and event.screen_x >= self.region.right - 1:
            self._dragging = True
            self.capture_mouse()
            event.stop()
            event.prevent_default()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        """Dragging the border: the tree ends where the pointer is."""
        if self._dragging:
            self.set_width(int(event.screen_x) - self.region.x + 1)
            event.stop()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        """End of a border drag."""
        if self._dragging:
            self._dragging = False
            self.release_mouse()
            event.stop()
            event.prevent_default()

    def on_click(self, event: events.Click) -> None:
        """A click that ended a border drag selects no node."""
        if event.screen_x >= self.region.right - 1:
            event.stop()
            event.prevent_default()

    def _fill_images(self, node: TreeNode[NodeData]) -> None:
        series = node.data.series if node.data is not None else None
        if series is None:
            return
        slices = series.slices()
        if len(node.children) == len(slices) and all(
            c.data is not None and c.data.obj is series for c in node.children
        ):
            return
        node.remove_children()
        total = len(slices)
        for i, sl in enumerate(slices):
            inst = sl.instance
            label = Text(f"{i + 1}/{total}", style="bold")
            number = f"#{inst.instance_number}" if inst.instance_number is not None else ""
            frame = f" fr {sl.frame + 1}" if inst.frames > 1 else ""
            label.append(f"  {number}{frame}  {safe_text(inst.ref.name)}", style="dim")
            node.add_leaf(label, NodeData("image", series, i))

    def _update_problems(self, errors: list[IndexProblem]) -> None:
        """Show the problems found so far: new ones are appended (the list only grows while indexing),
        at most :data:`MAX_PROBLEMS_SHOWN` of them, so a folder of 50,000 non-DICOM files costs the tree
        a bounded amount of work per update instead of rebuilding 50,000 nodes every quarter second."""
        if not errors:
            return
        label = Text(f"Problems ({len(errors):,})", style="bold red")
        if self._problems is None:
            self._problems = self.root.add(label, NodeData("problems", None))
            self._problems_shown = 0
        else:
            self._problems.set_label(label)
        if len(errors) < self._problems_shown:  # a new hierarchy with fewer problems: start again
            self._problems.remove_children()
            self._problems_shown = 0
            self._problems_more = None
        shown = min(len(errors), MAX_PROBLEMS_SHOWN)
        for err in errors[self._problems_shown : shown]:
            # the file name first (a long path would leave nothing else visible); Enter shows all
            name = err.path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or err.path
            text = Text(safe_text(name), style="red")
            text.append(": " + safe_text(err.reason))
            self._problems.add_leaf(text, NodeData("problem", err))
        self._problems_shown = max(self._problems_shown, shown)
        hidden = len(errors) - shown
        if hidden > 0:
            more = Text(f"… {hidden:,} more (tui-dicom ls lists them all)", style="dim")
            if self._problems_more is None:
                self._problems_more = self._problems.add_leaf(more, NodeData("problem", None))
            else:
                self._problems_more.set_label(more)

    def _first_series_nodes(
        self,
    ) -> tuple[TreeNode[NodeData], TreeNode[NodeData], TreeNode[NodeData]] | None:
        """(patient, study, series) nodes of the first series matching :attr:`preferred`, else the first."""
        chosen = None
        for p_node in self.root.children:
            if p_node.data is None or p_node.data.kind != "patient":
                continue
            for s_node in p_node.children:
                for se_node in s_node.children:
                    if chosen is None:
                        chosen = (p_node, s_node, se_node)
                    if (
                        self.preferred is not None
                        and se_node.data is not None
                        and se_node.data.series is not None
                        and self.preferred(se_node.data.series)
                    ):
                        chosen = (p_node, s_node, se_node)
                        break
                else:
                    continue
                break
            else:
                continue
            break
        return chosen

    def _show_first_series(self) -> None:
        """Select the first series at start: the first one matching :attr:`preferred`, else the first."""
        chosen = self._first_series_nodes()
        if chosen is None:
            return
        p_node, s_node, se_node = chosen
        self._first_shown = True
        p_node.expand()
        s_node.expand()
        self.call_after_refresh(self._highlight, se_node)

    def _highlight(self, node: TreeNode[NodeData]) -> None:
        if self.cursor_node is node:
            series = node.data.series if node.data is not None else None
            if series is not None and node.data is not None and node.data.kind == "series":
                self.post_message(self.SeriesChosen(series))
            return
        self.move_cursor(node)

    def select_series(self, series: Series) -> None:
        """Move the cursor to ``series`` (e.g. after next/previous series), expanding its parents."""
        node = self._node_by_key.get(("SE", series.series_instance_uid))
        if node is None:
            return
        parent = node.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        self.call_after_refresh(self.move_cursor, node)

    # -------------------------------------------------------------------------------- events

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[NodeData]) -> None:
        """Highlighting a series shows its middle slice; an image shows that image."""
        event.stop()
        data = event.node.data
        series = data.series if data is not None else None
        if data is None or series is None:
            return
        if data.kind == "series":
            self.post_message(self.SeriesChosen(series))
        elif data.kind == "image":
            self.post_message(self.SliceChosen(series, data.index))

    def on_tree_node_selected(self, event: Tree.NodeSelected[NodeData]) -> None:
        """Enter (or a click) on a problem shows its full path and reason."""
        data = event.node.data
        problem = data.problem if data is not None else None
        if problem is None or self._problems is None:
            return  # (the "… N more" entry has no problem of its own)
        event.stop()
        errors = [c.data.problem for c in self._problems.children if c.data is not None and c.data.problem]
        position = next((i for i, e in enumerate(errors, start=1) if e is problem), 0)
        self.post_message(
            self.ProblemChosen(problem, position, max(len(errors), len(self._hierarchy.errors)))
        )

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeData]) -> None:
        """Images are added when their series is expanded; an expanded study is announced."""
        data = event.node.data
        if data is not None and data.kind == "series":
            self._fill_images(event.node)
        elif data is not None and data.study is not None:
            self.post_message(self.StudyExpanded(data.study))

    def clear_hierarchy(self) -> None:
        """Forget every node (a new archive query replaces the tree)."""
        self.clear()
        self._node_by_key.clear()
        self._problems = None
        self._first_shown = False

    def expand_study(self, study_uid: str) -> bool:
        """Expand the node of a study (and its patient); False when it is not in the tree."""
        node = self._node_by_key.get(("S", study_uid))
        if node is None:
            return False
        if node.parent is not None:
            node.parent.expand()
        node.expand()
        return True

    def watch_privacy(self, privacy: bool) -> None:
        """Relabel patient nodes when privacy mode changes."""
        for p_node in self.root.children:
            if p_node.data is not None and p_node.data.patient is not None:
                p_node.set_label(patient_label(p_node.data.patient, privacy))

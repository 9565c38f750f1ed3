"""Our widgets must not overwrite Textual's own attributes.

Assigning ``self._nodes`` on a Tree or ``self._context`` on a Screen silently replaces Textual internals and
hangs or crashes the app at start-up (both happened). This test reads every ``self.X = ...`` in the UI
layer and fails fast on a clash, naming it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from textual.app import App
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Tree

UI = Path(__file__).resolve().parents[2] / "tui_dicom" / "ui"
#: public Textual settings that widgets are meant to assign
ALLOWED = {"title", "sub_title", "show_root", "guide_depth", "display", "visible", "styles", "tooltip"}
CLASSES = {
    ("screens/main.py", "MainScreen"): Screen,
    ("screens/help.py", "HelpScreen"): ModalScreen,
    ("screens/anonymize.py", "AnonymizeDialog"): ModalScreen,
    ("widgets/study_tree.py", "StudyTree"): Tree,
    ("widgets/inspector.py", "TagInspector"): Vertical,
    ("widgets/image_pane.py", "ImagePane"): Vertical,
    ("widgets/annotations.py", "AnnotationBar"): Widget,
    ("widgets/picture.py", "PictureView"): Widget,
    ("app.py", "DicomViewerApp"): App,
    ("screens/archive.py", "ArchiveScreen"): Screen,
    ("widgets/archive_bar.py", "ArchiveBar"): Widget,
}


def _assigned(path: Path, class_name: str) -> set[str] | None:
    """Names assigned as ``self.X`` in the methods of ``class_name`` (not in nested classes); None if absent."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    if cls is None:
        return None
    names: set[str] = set()
    stack: list[ast.AST] = [m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                continue  # e.g. a Message subclass: its attributes are its own
            stack.append(child)
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                names.add(target.attr)
    return names


@pytest.mark.parametrize(("where", "base"), list(CLASSES.items()), ids=[c for _f, c in CLASSES])
def test_no_textual_attribute_is_overwritten(where: tuple[str, str], base: type) -> None:
    file, class_name = where
    names = _assigned(UI / file, class_name)
    assert names is not None, f"class {class_name} not found in {file}"
    clashes = sorted(n for n in names if hasattr(base, n) and n not in ALLOWED)
    assert not clashes, f"{class_name} overwrites Textual's {clashes}"

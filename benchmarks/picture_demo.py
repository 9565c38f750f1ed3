"""Manual bench for PictureView: the picture widget alone, in a tiny app (not part of the package).

    python -m benchmarks.picture_demo [--renderer R] [--colors C] FILE_OR_DIR...

Used by hand to look at a renderer in a real terminal (kitty, xterm, mlterm, tmux) without the viewer
around it. Not one of the benchmark groups (``python -m benchmarks`` does not run it).

Shows PNG/JPEG files or DICOM files (windowed with their first WindowCenter/Width, else min/max),
Up/Down step through them, ``+``/``-`` zoom, ``r`` rotate, ``h`` flip, ``m`` toggles a demo overlay,
``n`` posts a notification, ``?`` opens a modal, ``q`` quits. Honours ``TUI_DICOM_LAYOUT_JSON``
like the viewer (layout json + ``.expected.png`` written atomically after each displayed frame).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from tui_dicom.core.graphics.layout import Shape, View
from tui_dicom.core.graphics.terminal import COLOR_MODES, RENDERERS, detect


def load_picture(path: Path) -> np.ndarray:
    """A uint8 picture from an image file or a DICOM file (simple window)."""
    import pydicom

    from tui_dicom.core.dicom.source import open_regular

    with open_regular(path) as fh:  # never blocks on a FIFO or reads a device
        try:
            from PIL import Image

            with Image.open(fh) as img:
                return np.asarray(img.convert("L" if img.mode in ("L", "I", "I;16", "F") else "RGB"))
        except Exception:  # noqa: BLE001 - not an image file: try DICOM
            fh.seek(0)
        ds = pydicom.dcmread(fh)
    arr = ds.pixel_array.astype(np.float64)
    if arr.ndim == 3 and arr.shape[-1] != 3:
        arr = arr[arr.shape[0] // 2]
    arr = arr * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
    wc, ww = ds.get("WindowCenter"), ds.get("WindowWidth")
    if wc is not None and ww is not None:
        wc = float(wc[0] if isinstance(wc, pydicom.multival.MultiValue) else wc)
        ww = float(ww[0] if isinstance(ww, pydicom.multival.MultiValue) else ww)
        lo, hi = wc - ww / 2, wc + ww / 2
    else:
        lo, hi = float(arr.min()), float(arr.max())
    return np.clip((arr - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    """Run the demo app."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--renderer", choices=RENDERERS, default="auto")
    ap.add_argument("--colors", choices=COLOR_MODES, default="auto")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args(argv)
    files: list[Path] = []
    for p in map(Path, args.paths):
        files.extend(sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p])
    if not files:
        print("no files", file=sys.stderr)
        return 2
    info = detect(override=args.renderer, colors=args.colors)

    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.screen import ModalScreen
    from textual.widgets import Footer, Label

    from tui_dicom.ui.widgets.picture import PictureView

    class Modal(ModalScreen[None]):
        BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

        def compose(self) -> ComposeResult:
            yield Label(f"A modal over the picture.\n{info.reason}\nEscape closes.", id="box")

    class Demo(App[None]):
        CSS = (
            "#box { border: round white; padding: 1 2; background: $panel; width: 60; height: 7; }"
            " Modal { align: center middle; } #status { height: 1; }"
        )
        BINDINGS = [
            Binding("down,j", "step(1)", "Next"),
            Binding("up,k", "step(-1)", "Prev"),
            Binding("plus", "zoom(1.25)", "Zoom+"),
            Binding("minus", "zoom(0.8)", "Zoom-"),
            Binding("r", "rotate", "Rotate"),
            Binding("h", "flip", "Flip"),
            Binding("m", "overlay", "Overlay"),
            Binding("n", "note", "Notify"),
            Binding("question_mark", "modal", "Modal"),
            Binding("q", "quit", "Quit"),
        ]

        def __init__(self) -> None:
            super().__init__()
            self.index = 0
            self.view = View()
            self.overlay = False
            self.pictures: dict[int, np.ndarray] = {}

        def compose(self) -> ComposeResult:
            yield PictureView(terminal=info, id="pic")
            yield Label("", id="status")
            yield Footer()

        def on_mount(self) -> None:
            self.redraw()

        def picture(self) -> np.ndarray:
            if self.index not in self.pictures:
                self.pictures[self.index] = load_picture(files[self.index])
            return self.pictures[self.index]

        def redraw(self) -> None:
            pic = self.picture()
            shapes: tuple[Shape, ...] = ()
            if self.overlay:
                h, w = pic.shape[:2]
                shapes = (
                    Shape("line", ((h * 0.2, w * 0.2), (h * 0.8, w * 0.7)), (255, 255, 0), "42.0 mm"),
                    Shape("ellipse", ((h * 0.3, w * 0.5), (h * 0.5, w * 0.8)), (0, 255, 0)),
                )
            self.query_one(PictureView).show(self.index, pic, view=self.view, shapes=shapes)

        def action_step(self, d: int) -> None:
            self.index = max(0, min(len(files) - 1, self.index + d))
            self.redraw()

        def action_zoom(self, f: float) -> None:
            self.view = View(**{**self.view.__dict__, "zoom": max(0.2, self.view.zoom * f)})
            self.redraw()

        def action_rotate(self) -> None:
            self.view = View(**{**self.view.__dict__, "rotation": self.view.rotation + 1})
            self.redraw()

        def action_flip(self) -> None:
            self.view = View(**{**self.view.__dict__, "flip_h": not self.view.flip_h})
            self.redraw()

        def action_overlay(self) -> None:
            self.overlay = not self.overlay
            self.redraw()

        def action_note(self) -> None:
            self.notify("A notification over the picture")

        def action_modal(self) -> None:
            self.push_screen(Modal())

        def on_picture_view_displayed(self, msg: PictureView.Displayed) -> None:
            self.query_one("#status", Label).update(
                f"{self.index + 1}/{len(files)}  {msg.renderer}  {info.reason}"
            )
            path = os.environ.get("TUI_DICOM_LAYOUT_JSON")
            if path:
                write_layout(
                    path,
                    {
                        "region_cells": list(msg.region_cells),
                        "cell_px": list(msg.cell_px),
                        "renderer": msg.renderer,
                        "slice": f"{self.index + 1}/{len(files)}",
                        "sop_instance_uid": "",
                    },
                    msg.picture,
                )

    Demo().run()
    return 0


def write_layout(path: str, data: dict[str, object], picture: np.ndarray) -> None:
    """Write the layout json and its ``.expected.png`` atomically (PNG first, then the json)."""
    from PIL import Image

    base = path[:-5] if path.endswith(".json") else path
    tmp_png = base + ".expected.tmp.png"
    Image.fromarray(np.ascontiguousarray(picture)).save(tmp_png, format="PNG")
    os.replace(tmp_png, base + ".expected.png")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


if __name__ == "__main__":
    raise SystemExit(main())

"""PNG screenshots of the viewer in real terminal emulators: what a person sees, graphics included.

    python screenshots/terminal_shots.py        (also run by screenshots/generate.py)

The SVG screenshots come from Textual's headless renderer, which can only draw the half-block picture.
These run ``tui-dicom`` in xterm (sixel) and kitty (kitty graphics protocol) on a virtual X display with
the real-terminal harness that the tests use (``../shared/tools/real_terminal.py``), let the terminal
choose the renderer as it would on a desk, type the keys, and keep the window as a PNG. Each shot is
checked: the picture must be on screen as graphics (``check_shot.py``), or the PNG is not written.

Needs Xvfb, xterm, kitty, xdotool and ImageMagick (Debian packages ``xvfb xterm kitty xdotool
imagemagick x11-utils xfonts-base``) and the real-data folder beside the repository (``../shared/data``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
TOOLS = SHARED / "tools"

#: (file name, terminal, data, xdotool keys typed after the first picture, size in cells)
SHOTS = [
    ("xterm-sixel-ct.png", "xterm", DATA / "ge_ct_head", "Down Down c Right Right Right", (150, 45)),
    ("kitty-taichi-mr.png", "kitty", DATA / "taichi_mri_cd", "Down Down", (150, 45)),
]


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("tui-dicom")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tui_dicom"]


def missing() -> list[str]:
    """What is missing to take the shots (empty when everything is there)."""
    need = [p for p in ("Xvfb", "xterm", "kitty", "xdotool", "import", "xwininfo") if shutil.which(p) is None]
    if not (TOOLS / "real_terminal.py").exists():
        need.append(str(TOOLS / "real_terminal.py"))
    if not DATA.is_dir():
        need.append(str(DATA))
    return need


def shoot(name: str, term: str, data: Path, keys: str, size: tuple[int, int]) -> bool:
    """Take one shot; True if the PNG was written (the picture was found on screen as graphics)."""
    cols, rows = size
    with tempfile.TemporaryDirectory() as tmp:
        layout = Path(tmp) / "layout.json"
        shot = Path(tmp) / name
        env = dict(os.environ, TUI_DICOM_LAYOUT_JSON=str(layout), PYTHONPATH=str(REPO))
        env.pop("TUI_DICOM_RENDERER", None)
        argv = [
            sys.executable,
            str(TOOLS / "real_terminal.py"),
            "--term",
            term,
            "--cols",
            str(cols),
            "--rows",
            str(rows),
            "--wait-file",
            str(layout),
            "--settle",
            "3",
            "--keys",
            keys,
            "--key-gap",
            "1.5",
            "--out",
            str(shot),
            "--",
            *_command(),
            data.name,  # relative: the title shows the folder's name, not where it sits on this machine
        ]
        run = subprocess.run(argv, cwd=data.parent, env=env, capture_output=True, text=True, timeout=180)
        if run.returncode != 0 or not shot.exists() or not layout.exists():
            print(f"{name}: the terminal run failed: {run.stderr[-400:]}", file=sys.stderr)
            return False
        check = subprocess.run(
            [sys.executable, str(TOOLS / "check_shot.py"), str(shot), str(layout)],
            capture_output=True,
            text=True,
        )
        verdict = json.loads(check.stdout.strip().splitlines()[-1]) if check.stdout.strip() else {}
        if verdict.get("verdict") != "graphics":
            print(f"{name}: the picture is not on screen as graphics: {verdict}", file=sys.stderr)
            return False
        _save_small(shot, HERE / name)
        renderer = json.loads(layout.read_text())["renderer"]
    print(f"wrote screenshots/{name} ({term}, {renderer}, correlation {verdict.get('corr_full')})")
    return True


def _save_small(src: Path, dst: Path) -> None:
    """Write the PNG with the best lossless compression (a terminal window has few colours)."""
    from PIL import Image

    with Image.open(src) as img:
        img.convert("RGB").save(dst, format="PNG", optimize=True)


def main() -> int:
    """Take every shot; 0 when all were written."""
    lacking = missing()
    if lacking:
        print("terminal screenshots skipped, missing: " + ", ".join(lacking), file=sys.stderr)
        return 1
    ok = [shoot(*spec) for spec in SHOTS]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())

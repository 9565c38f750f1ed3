"""Regenerate screenshots/*.svg from real data with a pinned renderer (half-block, truecolor), then the
PNG screenshots of real terminals (xterm with sixel, kitty) with :mod:`terminal_shots`.

    python screenshots/generate.py            (--svg-only: skip the real terminals)

Needs the shared real-data folder beside the repository (``../shared/data``) and pydicom-data; the PNGs
also need Xvfb, xterm, kitty, xdotool and ImageMagick (see terminal_shots.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The pilot waits (``tests/pilot.py``) live with the tests, outside the package that ships.
TESTS = HERE.parent / "tests"
DATA = HERE.parent.parent / "shared" / "data"

SHOTS = [
    # (file name, paths, keys pressed after the first slice shows, size)
    ("viewer-taichi.svg", [DATA / "taichi_mri_cd"], [], (160, 48)),
    ("viewer-ct-bone.svg", [DATA / "ge_ct_head"], ["9", "c"], (160, 48)),
    ("viewer-ct-narrow.svg", [DATA / "ge_ct_head"], [], (80, 24)),
    ("tag-search.svg", [DATA / "taichi_mri_cd"], ["tab", "slash", *"patient"], (160, 48)),
    ("palette-presets.svg", [DATA / "taichi_mri_cd"], ["ctrl+p", *"preset"], (160, 48)),
    ("privacy.svg", [DATA / "taichi_mri_cd"], ["p"], (160, 48)),
    ("help.svg", [DATA / "ge_ct_head"], ["question_mark"], (120, 40)),
    ("mpr-ct-tilted.svg", [DATA / "ge_ct_head"], ["P", *["right"] * 12, "down", "down"], (160, 48)),
    ("compare-taichi.svg", [DATA / "taichi_mri_cd"], ["C", "n", "down"], (160, 48)),
]


async def shoot(name: str, paths: list[Path], keys: list[str], size: tuple[int, int]) -> None:
    """Run the app headless, press ``keys``, save an SVG screenshot."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from pilot import wait_for_index, wait_for_slice, wait_until

    from tui_dicom.core.graphics.terminal import detect
    from tui_dicom.ui.app import DicomViewerApp

    terminal = detect(override="halfblock", colors="truecolor")
    app = DicomViewerApp(
        [str(p) for p in paths], terminal=terminal, source_label=" ".join(p.name for p in paths)
    )
    async with app.run_test(size=size) as pilot:
        await wait_for_index(pilot, app)
        await wait_for_slice(pilot, app)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await wait_until(
            pilot,
            lambda: (
                app.main.last_displayed is not None and app.main.counter_text == app.main.last_displayed.slice
            ),
            10,
        )
        await wait_until(pilot, lambda: bool(getattr(app.screen, "settled", True)), 60)  # MPR, compare
        await asyncio.sleep(0.5)
        await pilot.pause()
        app.save_screenshot(filename=name, path=str(HERE))
    print(f"wrote screenshots/{name}")


def main() -> int:
    """Write every screenshot."""
    if not DATA.is_dir():
        print(f"real data folder not found: {DATA}", file=sys.stderr)
        return 1
    os.environ.setdefault("COLORTERM", "truecolor")
    for name, paths, keys, size in SHOTS:
        asyncio.run(shoot(name, paths, keys, size))
    if "--svg-only" in sys.argv[1:]:
        return 0
    sys.path.insert(0, str(HERE))
    import terminal_shots

    return terminal_shots.main()


if __name__ == "__main__":
    raise SystemExit(main())

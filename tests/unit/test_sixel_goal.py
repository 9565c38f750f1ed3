"""The sixel goal on real pictures, through the frame encoder exactly as the picture widget calls it.

For the same picture the viewer's sixels must be no larger than img2sixel's (libsixel, the reference sixel
encoder) and at least as faithful to the 8-bit windowed picture. Both outputs are decoded by ImageMagick
(a sixel reader nobody here wrote), so the fidelity measured is what a terminal shows. This guards the
whole path: the histogram-placed grey levels, the threshold painting and the budget/fidelity choice must
reach the encoder from :func:`tui_dicom.core.graphics.frames.encode` with the terminal's default budget.

The pictures: GE head CT slices, and beyond CT the kinds where noise makes sixel runs short: MR (a clinic
CD's lumbar spine, a 1024x1024 Siemens head, an enlarged 64x64 EPI slice), CR radiographs, a grey
ultrasound and an NM picture. Each is a real file; a case is skipped when its data are absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA_STORE, PYDICOM_FILES, SHARED_DATA
from PIL import Image

from tui_dicom.core.dicom.source import FileRef
from tui_dicom.core.graphics import sixel
from tui_dicom.core.graphics.frames import EncodedFrame, FrameRequest, encode
from tui_dicom.core.graphics.layout import View
from tui_dicom.core.graphics.terminal import TerminalInfo
from tui_dicom.core.imaging.pixels import decode_frame
from tui_dicom.core.imaging.windowing import render, resolve_window

pytestmark = [
    pytest.mark.skipif(shutil.which("convert") is None, reason="ImageMagick `convert` not installed"),
    pytest.mark.skipif(shutil.which("img2sixel") is None, reason="img2sixel (libsixel-bin) not installed"),
]

#: the GE head CT slices (the picture of the step benchmark among them)
needs_ct = pytest.mark.skipif(
    not (SHARED_DATA / "ge_ct_head").is_dir(),
    reason=f"shared data missing: ge_ct_head (expected in {SHARED_DATA})",
)

#: the most grey levels a windowed CT slice needs at the fidelity targets (measured 9-19 on this series at
#: 40 dB, 7-17 at the earlier 39 dB; the target rose so that enlarged EPI and ultrasound pictures, where
#: img2sixel reaches 39.8-40.1 dB, are met too)
MAX_LEVELS = 20


def _decode(data: bytes, tmp_path: Path) -> np.ndarray:
    """The grey picture a sixel reader (ImageMagick) shows for ``data``."""
    src, out = tmp_path / "pic.six", tmp_path / "pic.png"
    src.write_bytes(data)
    subprocess.run(["convert", f"sixel:{src}", str(out)], check=True, capture_output=True)
    return np.asarray(Image.open(out).convert("L"))


def _psnr(got: np.ndarray, want: np.ndarray) -> float:
    mse = float(((got.astype(np.float64) - want.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))


def _frame(name: str, cells: tuple[int, int], frame_no: int = 0, budget: int | None = None) -> EncodedFrame:
    """A picture (a GE head CT slice when ``name`` has no folder), windowed as the slice loader does,
    encoded as the widget asks for sixel (with the terminal's default budget unless ``budget``)."""
    path = SHARED_DATA / "ge_ct_head" / name if "/" not in name else _path(name)
    frame = decode_frame(FileRef(str(path)), frame_no)
    picture = render(frame, resolve_window(frame, None))
    req = FrameRequest(1, name, picture, 1.0, View(), (), cells, "sixel", "truecolor", (10, 20), 1, (0, 0, 0))
    terminal = TerminalInfo(renderer="sixel")
    if budget is not None:
        terminal = TerminalInfo(renderer="sixel", sixel_max_bytes=budget)
    return encode(req, terminal, lambda pic: "")


def _path(name: str) -> Path:
    """``shared/...``, ``store/...`` (pydicom-data) or ``pydicom/...`` (pydicom's test files); skip if absent."""
    where, _, rest = name.partition("/")
    root: Path | None = {"shared": SHARED_DATA, "store": DATA_STORE, "pydicom": PYDICOM_FILES}[where]
    if root is None or not (root / rest).is_file():
        pytest.skip(f"real picture absent: {name} (pydicom-data, pydicom or the shared data folder)")
    return Path(root, rest)


def _ours_and_img2sixel(enc: EncodedFrame, tmp_path: Path) -> tuple[bytes, bytes, float, float]:
    """Our sixels, img2sixel's for the same picture, and the PSNR (dB) of each as ImageMagick shows them."""
    assert enc.payload is not None
    ours = enc.payload().encode("ascii")
    shown = enc.shown
    png = tmp_path / "shown.png"
    Image.fromarray(shown).save(png)
    ref = subprocess.run(["img2sixel", str(png)], check=True, capture_output=True).stdout
    got, ref_got = _decode(ours, tmp_path), _decode(ref, tmp_path)
    assert got.shape == shown.shape == ref_got.shape
    return ours, ref, _psnr(got, shown), _psnr(ref_got, shown)


@needs_ct
@pytest.mark.parametrize(
    ("name", "cells"),
    [
        ("01.dcm", (72, 47)),
        ("08.dcm", (53, 27)),
        ("15.dcm", (53, 27)),  # the step benchmark's picture
        ("15.dcm", (90, 46)),
        # the top of the head: mostly black, where a whole-picture PSNR lets the content go coarse and
        # keeping every level of a small picture cost twice img2sixel's bytes
        ("27.dcm", (53, 27)),
        ("28.dcm", (72, 47)),
    ],
)
def test_smaller_than_img2sixel_and_at_least_as_faithful(
    name: str, cells: tuple[int, int], tmp_path: Path
) -> None:
    enc = _frame(name, cells)
    assert enc.payload is not None
    ours = enc.payload().encode("ascii")
    shown = enc.shown
    assert shown.ndim == 2 and min(shown.shape) >= 500  # a pane-sized picture, not a thumbnail
    png = tmp_path / "shown.png"
    Image.fromarray(shown).save(png)
    ref = subprocess.run(["img2sixel", str(png)], check=True, capture_output=True).stdout

    got, ref_got = _decode(ours, tmp_path), _decode(ref, tmp_path)
    assert got.shape == shown.shape == ref_got.shape
    ours_db, ref_db = _psnr(got, shown), _psnr(ref_got, shown)
    # few levels, placed by the histogram: the budget/fidelity choice reached the encoder
    assert len(np.unique(got)) <= MAX_LEVELS
    assert ours_db >= sixel.TARGET_PSNR - 0.05, f"{ours_db:.2f} dB"
    assert ours_db >= ref_db, f"ours {ours_db:.2f} dB < img2sixel {ref_db:.2f} dB"
    assert len(ours) <= len(ref), f"ours {len(ours)} B > img2sixel {len(ref)} B"


#: beyond CT, at the pane sizes above: (source/path, frame, cells). The spine MR and the CRs were the
#: closest to img2sixel's bytes (0.82-0.93x), the EPI, ultrasound and T1 MR to its fidelity (+0.2-1.2 dB)
OTHER_PICTURES = [
    ("shared/taichi_mri_cd/DCMDT/D0000017", 0, (53, 27)),  # T1 sagittal lumbar spine (Hitachi 0.5 T)
    ("shared/taichi_mri_cd/DCMDT/D0000030", 0, (90, 46)),  # T2 axial
    ("shared/taichi_mri_cd/DCMDT/D0000061", 0, (72, 47)),  # STIR sagittal
    ("shared/dcm_qa_ts/In/1.dcm", 0, (53, 27)),  # Siemens MR
    ("shared/dcm_qa_nih/In/20180918GE/mr_0004/axial_epi_fmri_interleaved_i_to_s-00043.dcm", 0, (53, 27)),
    ("store/MR2_UNCR.dcm", 0, (53, 27)),  # 1024x1024 MR
    ("store/RG1_UNCR.dcm", 0, (53, 27)),  # CR chest, MONOCHROME1
    ("store/RG3_UNCR.dcm", 0, (72, 47)),  # CR
    ("store/JPGLosslessP14SV1_1s_1f_8b.dcm", 0, (53, 27)),  # grey ultrasound
    ("pydicom/JPEG2000.dcm", 0, (72, 47)),  # NM
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "frame_no", "cells"), OTHER_PICTURES)
def test_beyond_ct_smaller_than_img2sixel_and_at_least_as_faithful(
    name: str, frame_no: int, cells: tuple[int, int], tmp_path: Path
) -> None:
    ours, ref, ours_db, ref_db = _ours_and_img2sixel(_frame(name, cells, frame_no), tmp_path)
    # the fidelity target is kept unless the wire budget holds the picture (the T2 at 900x900 px)
    held = len(ours) > 0.9 * TerminalInfo().sixel_max_bytes
    assert held or ours_db >= sixel.TARGET_PSNR - 0.05, f"{ours_db:.2f} dB"
    assert ours_db >= ref_db, f"ours {ours_db:.2f} dB < img2sixel {ref_db:.2f} dB"
    assert len(ours) <= len(ref), f"ours {len(ours)} B > img2sixel {len(ref)} B"


@pytest.mark.slow
def test_over_the_wire_budget_held_to_it_and_more_faithful_at_img2sixels_size(tmp_path: Path) -> None:
    # a noisy 1024x1024 MR at 900x900 px: img2sixel sends ~420 KB, over the default budget, which holds
    # ours to ~200 KB (fewer levels, below img2sixel's fidelity); given img2sixel's own byte count as the
    # budget, ours must be at least as faithful in no more bytes
    name, cells = "store/MR2_UNCR.dcm", (90, 46)
    ours, ref, ours_db, ref_db = _ours_and_img2sixel(_frame(name, cells), tmp_path)
    assert len(ref) > TerminalInfo().sixel_max_bytes >= len(ours)
    ours, ref, ours_db, ref_db = _ours_and_img2sixel(_frame(name, cells, budget=len(ref)), tmp_path)
    assert ours_db >= ref_db, f"ours {ours_db:.2f} dB < img2sixel {ref_db:.2f} dB"
    assert len(ours) <= len(ref), f"ours {len(ours)} B > img2sixel {len(ref)} B"


@needs_ct
def test_the_widget_writes_the_encoded_sixels_at_the_pictures_first_cell() -> None:
    enc = _frame("15.dcm", (53, 27))
    x, y, w, h = enc.layout.cells
    line = enc.render_line(y, 0, 53)
    assert enc.payload is not None and enc.payload() in line
    assert enc.payload_bytes == len(enc.payload()) <= TerminalInfo().sixel_max_bytes

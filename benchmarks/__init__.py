"""Benchmarks of tui-dicom measured side by side with reference tools (DCMTK, pydicom, chafa, img2sixel).

Run ``python -m benchmarks [--quick] [--out FILE]`` from the repository root. Every figure is the
median of at least 5 runs, measured in the same run as its reference, because the machines these
run on are shared and noisy: a ratio to a neighbour is more telling than an absolute number.

Inputs are built from real data (``../shared/data``, pydicom-data) under ``benchmarks/work/``
(ignored by git): DICOMDIR CDs made with DCMTK ``dcmmkdir`` and larger sets made by copying real CT
slices under new UIDs. Nothing is ever written into ``../shared``.

Groups (one module each): ``dicomdir``, ``scan``, ``first_image``, ``step``, ``decode``, ``rss``,
``dump``, ``volume``, ``archive``. Each exposes ``run(ctx) -> list[Row]``; a subject that does not exist yet (a module still
being written) gives rows with ``ours = None`` and ``pass = False`` and a note, never a crash.
``picture_demo`` is not a group: it is a manual bench (the picture widget alone in a real terminal).
"""

from __future__ import annotations

GROUPS = ("dicomdir", "scan", "first_image", "step", "decode", "rss", "dump", "volume", "archive")

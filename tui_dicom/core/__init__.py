"""The pure core of tui-dicom: indexing, decoding, windowing, rendering to pixels, caching.

Nothing in this package imports Textual, Rich or textual-image; it is reused by the one-shot
commands and unit-tested on its own.
"""

"""Textual widgets of the viewer. ``picture.PictureView`` draws pictures (see its module docstring)."""

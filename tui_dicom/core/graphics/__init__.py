"""Terminal graphics: terminal detection, fitting a picture to a cell grid, and the half-block, sixel
and kitty encoders. Pure numpy/bytes; depends on nothing above the core's utilities."""

"""Allow ``python -m tui_dicom``."""

from tui_dicom.cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

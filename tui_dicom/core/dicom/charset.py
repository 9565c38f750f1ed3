"""Character sets that decode with one Python codec and no ISO 2022 escape handling.

The single-valued SpecificCharacterSet terms below map to the codecs pydicom's
``pydicom.charset.python_encoding`` gives them; a value in them without an ESC byte decodes as
``raw.decode(codec)`` (with replacement characters for undecodable bytes), exactly as pydicom
decodes it. Multi-valued sets and ISO 2022 terms with code extensions need pydicom.
"""

from __future__ import annotations

SINGLE_CODEC_CHARSETS = {
    "": "iso8859",
    "ISO_IR 6": "iso8859",
    "ISO_IR 13": "shift_jis",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 126": "iso_ir_126",
    "ISO_IR 127": "iso_ir_127",
    "ISO_IR 138": "iso_ir_138",
    "ISO_IR 144": "iso_ir_144",
    "ISO_IR 148": "iso_ir_148",
    "ISO_IR 166": "iso_ir_166",
    "ISO_IR 192": "UTF8",
    "GB18030": "GB18030",
    "GBK": "GBK",
}

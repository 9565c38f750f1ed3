"""Dataset → rows for the tag inspector and ``tui-dicom dump``: sequences nested, values made safe.

Everything here is pure (no Textual, no Rich). :func:`tag_rows` flattens a pydicom dataset (file meta
first) into :class:`TagRow` objects in document order: a sequence row is followed by one row per item
and the item's elements, each row knowing its depth and the index of its parent row. Display values
are decoded with SpecificCharacterSet (pydicom does that when it converts an element), multi-values are
joined with ``\\``, long values are cut with their length shown, bulk pixel data is summarised, and
every value is passed through :func:`~tui_dicom.core.safe.safe_text` so it is inert in a terminal.

Tag queries (:func:`parse_tag_query`, :func:`select`) accept a keyword (``PatientName``), a number
(``0010,0010``, ``(0010,0010)``, ``00100010``, ``0x00100010``), a path into sequences
(``ReferencedImageSequence[0].ReferencedSOPInstanceUID``; without ``[i]`` every item) and ``*`` for
any number of sequence levels (``*.ReferencedSOPInstanceUID``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from tui_dicom.core.dicom.reading import RAW_LENGTHS_ATTR
from tui_dicom.core.safe import safe_text

#: ``typing`` costs milliseconds at import and ``tui-dicom dump`` must start fast: its names are
#: needed by the type checker only (annotations are strings here), so it is imported for mypy alone.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, Protocol

    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

#: default cut for display values (characters before escaping)
DEFAULT_MAX_VALUE_CHARS = 256
ITEM_TAG = 0xFFFEE000
PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
#: VRs whose value is raw bytes
BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN", "OB or OW", "US or OW"})
#: binary values longer than this are bulk data (left out of DICOM JSON)
BULK_THRESHOLD = 1024
_FIXED_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "AT": 4, "FD": 8, "SV": 8, "UV": 8}
_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})  # affected by SpecificCharacterSet
_UNDEFINED = 0xFFFFFFFF
#: attribute of a dataset read by :func:`tui_dicom.core.dicom.reading.read_dataset`: {tag: length in the file}


class _Frozen:
    """Value semantics of a frozen dataclass (equality, hash, repr, no assignment) for the records below.

    Written out instead of ``@dataclass(frozen=True)``: ``dataclasses`` (with ``inspect``, ``ast``,
    ``dis`` and ``tokenize``) and generating each class's methods cost more at import than the whole
    quick dump of a file, and ``tui-dicom dump`` must start like a native tool. ``_fields`` lists the
    fields in order; ``_hidden`` the ones left out of ``repr``.
    """

    _fields: tuple[str, ...] = ()
    _hidden: frozenset[str] = frozenset()

    def _init(self, values: dict[str, object]) -> None:
        self.__dict__.update(values)

    def _values(self) -> tuple[object, ...]:
        d = self.__dict__
        return tuple(d[name] for name in self._fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Frozen) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={self.__dict__[n]!r}" for n in self._fields if n not in self._hidden)
        return f"{self.__class__.__qualname__}({shown})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (self.__class__, dict(self.__dict__)))


def _rebuild(cls: type[_Frozen], values: dict[str, object]) -> _Frozen:
    """Unpickle a record (its ``__init__`` is bypassed, as ``__setattr__`` refuses)."""
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


class TagRow(_Frozen):
    """One line of the inspector: an element, or an item of a sequence.

    Attributes:
        tag: The element's tag as an int (``0xFFFEE000`` for an item row).
        path: Path from the top: tags and item indices, e.g. ``(0x00081140, 0, 0x00081155)``; an item
            row's path ends with its index.
        depth: Indentation level: 0 top level, 1 items of a top-level sequence, 2 their elements, ...
        vr: Value representation (``"na"`` for items).
        keyword: DICOM keyword; for private elements a CamelCase form of the private dictionary name,
            ``"PrivateCreator"`` for creator elements, ``""`` when unknown.
        name: Human-readable name (``"Patient's Name"``); for private elements from pydicom's private
            dictionary.
        value: Display value, terminal-safe, cut to ``max_value_chars`` with the full length shown.
        length: Value length in bytes (as stored in the file when still known, else as encoded);
            None for sequences with undefined length and items.
        is_sequence: The element is a sequence (its items follow).
        is_item: The row is an item of a sequence.
        private_creator: The private creator of a private element (terminal-safe), else ``""``.
        parent: Index of the parent row (the item for an element inside a sequence, the sequence for
            an item), None at the top level.
    """

    _fields = (
        "tag",
        "path",
        "depth",
        "vr",
        "keyword",
        "name",
        "value",
        "length",
        "is_sequence",
        "is_item",
        "private_creator",
        "parent",
    )
    tag: int
    path: tuple[int, ...]
    depth: int
    vr: str
    keyword: str
    name: str
    value: str
    length: int | None
    is_sequence: bool
    is_item: bool
    private_creator: str
    parent: int | None

    def __init__(
        self,
        tag: int,
        path: tuple[int, ...],
        depth: int,
        vr: str,
        keyword: str,
        name: str,
        value: str,
        length: int | None,
        is_sequence: bool = False,
        is_item: bool = False,
        private_creator: str = "",
        parent: int | None = None,
    ) -> None:
        self._init(
            {
                "tag": tag,
                "path": path,
                "depth": depth,
                "vr": vr,
                "keyword": keyword,
                "name": name,
                "value": value,
                "length": length,
                "is_sequence": is_sequence,
                "is_item": is_item,
                "private_creator": private_creator,
                "parent": parent,
            }
        )

    @property
    def tag_text(self) -> str:
        """``"(0010,0010)"``."""
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"

    @property
    def is_private(self) -> bool:
        """True for elements of an odd (private) group."""
        return bool((self.tag >> 16) & 1) and not self.is_item


class TagQueryError(ValueError):
    """A tag query that cannot be parsed; ``str()`` says why."""


class Step(_Frozen):
    """One step of a :class:`TagPath`: a tag (None: ``*``, any number of levels) and an item index.

    ``item`` None means every item of the sequence.
    """

    _fields = ("tag", "item")
    tag: int | None
    item: int | None

    def __init__(self, tag: int | None, item: int | None = None) -> None:
        self._init({"tag": tag, "item": item})


class TagPath(_Frozen):
    """A parsed tag query: steps from the top level down, plus the original text."""

    _fields = ("steps", "text")
    steps: tuple[Step, ...]
    text: str

    def __init__(self, steps: tuple[Step, ...], text: str) -> None:
        self._init({"steps": steps, "text": text})

    @property
    def is_simple(self) -> bool:
        """True for a single top-level tag (no sequence path, no wildcard)."""
        return len(self.steps) == 1 and self.steps[0].tag is not None


class Match(_Frozen):
    """An element found by :func:`select`, its path, and the dataset that holds it."""

    _fields = ("path", "element", "dataset")
    _hidden = frozenset({"element", "dataset"})
    path: tuple[int, ...]
    element: DataElement
    dataset: Dataset

    def __init__(self, path: tuple[int, ...], element: DataElement, dataset: Dataset) -> None:
        self._init({"path": path, "element": element, "dataset": dataset})

    @property
    def depth(self) -> int:
        """Indentation depth of the element (0 top level, 2 inside a top-level sequence's item, ...)."""
        return len(self.path) - 1


# ------------------------------------------------------------------------------------------ dictionary

_entry_cache: dict[int, tuple[str, str]] = {}
_private_cache: dict[tuple[str, int], tuple[str, str]] = {}


def _public_entry(tag: int) -> tuple[str, str]:
    """(keyword, name) of a public tag; ``("", "Unknown")`` if not in the dictionary."""
    hit = _entry_cache.get(tag)
    if hit is not None:
        return hit
    from tui_dicom.core.dicom.dictionary import public_entry

    entry = public_entry(tag, repeaters=bool(tag & 0xFFFF))
    if entry is not None:
        hit = (entry[4], entry[2])
    elif tag & 0xFFFF == 0:
        hit = ("GroupLength", "Group Length")
    else:
        hit = ("", "Unknown")
    _entry_cache[tag] = hit
    return hit


def _camel(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^0-9A-Za-z]+", name) if w)


def _private_entry(creator: str, tag: int) -> tuple[str, str]:
    """(keyword, name) of a private element from pydicom's private dictionary."""
    key = (creator, tag)
    hit = _private_cache.get(key)
    if hit is not None:
        return hit
    from tui_dicom.core.dicom.dictionary import private_entry

    entry = private_entry(tag, creator)
    name = entry[2] if entry is not None else ""
    hit = (_camel(name), name) if name and name != "Unknown" else ("", "Unknown private element")
    _private_cache[key] = hit
    return hit


def describe_tag(tag: int, creator: str = "") -> tuple[str, str]:
    """Return ``(keyword, name)`` for ``tag``; private tags are looked up with their ``creator``.

    Args:
        tag: The tag as an int.
        creator: The private creator for private elements.

    Returns:
        The keyword (possibly ``""``) and a human-readable name.
    """
    group, elem = tag >> 16, tag & 0xFFFF
    if group & 1:
        if elem == 0:
            return ("PrivateGroupLength", "Private Group Length")
        if 0x0010 <= elem <= 0x00FF:
            return ("PrivateCreator", "Private Creator")
        if creator:
            return _private_entry(creator, tag)
        return ("", "Unknown private element")
    return _public_entry(tag)


# ---------------------------------------------------------------------------------------------- values


def _cut(text: str, max_chars: int | None, unit: str = "chars", total: int | None = None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    count = len(text) if total is None else total
    return f"{text[:max_chars]}… ({count:,} {unit})"


def _pixel_summary(vr: str, value: bytes, ds: Dataset | None, undefined: bool) -> str:
    if ds is None:
        return pixel_summary(vr, len(value), undefined)
    return pixel_summary(
        vr,
        len(value),
        undefined,
        rows=ds.get("Rows"),
        cols=ds.get("Columns"),
        bits=ds.get("BitsAllocated"),
        frames=ds.get("NumberOfFrames"),
        spp=ds.get("SamplesPerPixel"),
    )


def pixel_summary(
    vr: str,
    nbytes: int,
    undefined: bool,
    *,
    rows: Any = None,
    cols: Any = None,
    bits: Any = None,
    frames: Any = None,
    spp: Any = None,
) -> str:
    """``OW 524,288 bytes, 512×512 16-bit``: the display value of pixel data.

    ``rows``, ``cols``, ``bits``, ``frames`` and ``spp`` are the dataset's values (anything that is not
    an int is left out; ``frames`` may be an integer string).
    """
    parts = [f"{vr} {'encapsulated, ' if undefined else ''}{nbytes:,} bytes"]
    geometry = ""
    if isinstance(rows, int) and isinstance(cols, int):
        geometry = f"{cols}×{rows}"
    try:
        nframes = int(frames) if frames not in (None, "") else 1
    except (TypeError, ValueError):
        nframes = 1
    if nframes > 1:
        geometry += f"×{nframes} frames" if geometry else f"{nframes} frames"
    if isinstance(bits, int):
        geometry += f" {bits}-bit" if geometry else f"{bits}-bit"
    if isinstance(spp, int) and spp > 1:
        geometry += f" ×{spp} samples"
    if geometry:
        parts.append(geometry)
    return ", ".join(parts)


def binary_text(vr: str, value: bytes, little: bool, max_chars: int | None) -> str:
    """Hex dump of a binary value: bytes for OB/UN, 16-bit words for OW, numbers for OF/OD/OL/OV."""
    import struct

    size = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}.get(vr, 1)
    limit = len(value) if max_chars is None else min(len(value), (max_chars // 3 + 1) * size)
    limit -= limit % size
    head = value[:limit]
    if size == 1:
        text = "\\".join(f"{b:02x}" for b in head)
    else:
        order = "<" if little else ">"
        fmt = {"OW": "H", "OF": "f", "OL": "I", "OD": "d", "OV": "Q"}[vr]
        items = struct.unpack(f"{order}{len(head) // size}{fmt}", head)
        if vr == "OW":
            text = "\\".join(f"{v:04x}" for v in items)
        elif vr == "OF":
            text = "\\".join(f"{v:.7g}" for v in items)
        else:
            text = "\\".join(str(v) for v in items)
    if limit < len(value) or (max_chars is not None and len(text) > max_chars):
        return f"{text[:max_chars]}… ({len(value):,} bytes)"
    return text


def _one(value: Any, vr: str) -> str:
    if isinstance(value, float) and not isinstance(value, str):
        if vr == "FL" or vr == "OF":
            return f"{value:.7g}"
        if type(value) is float:  # FD: shortest round-trip form
            return repr(value)
    if vr == "AT" and isinstance(value, int):
        return f"({value >> 16:04X},{value & 0xFFFF:04X})"
    if isinstance(value, (bytes, bytearray)):
        return "\\".join(f"{b:02x}" for b in value)
    return str(value)


def value_text(
    elem: DataElement, ds: Dataset | None = None, *, max_chars: int | None = DEFAULT_MAX_VALUE_CHARS
) -> str:
    """Return the display value of ``elem``, terminal-safe.

    Args:
        elem: A converted pydicom element.
        ds: The dataset holding it (used to summarise pixel data and pick the byte order).
        max_chars: Cut longer values (None: never cut), showing the full length.

    Returns:
        Multi-values joined with ``\\``, PN with its ``=`` component groups, binary values as hex,
        pixel data as a summary, sequences as an item count; never any control character.
    """
    vr = str(elem.VR)
    value = elem.value
    if vr == "SQ":
        n = len(value) if value is not None else 0
        return f"{n} item" + ("" if n == 1 else "s")
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        if elem.tag in PIXEL_DATA_TAGS:
            return _pixel_summary(vr, bytes(value), ds, bool(elem.is_undefined_length))
        little = _little_endian(ds)
        return safe_text(binary_text(vr if vr in BINARY_VRS else "OB", bytes(value), little, max_chars))
    if isinstance(value, str):
        return join_value_texts([value], max_chars)
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        if max_chars is not None and len(value) > max_chars:
            return join_value_texts([_one(v, vr) for v in value[: max_chars // 2 + 1]], max_chars, len(value))
        return join_value_texts([_one(v, vr) for v in value], max_chars)
    return join_value_texts([_one(value, vr)], max_chars)


def join_value_texts(items: Sequence[str], max_chars: int | None, total: int | None = None) -> str:
    """The display value of the value texts ``items``: joined with ``\\``, cut, terminal-safe.

    More values than ``max_chars`` show only the first ones and the count; ``total`` is that count
    when ``items`` already holds only the first of them.
    """
    if total is None and len(items) > 1 and max_chars is not None and len(items) > max_chars:
        total = len(items)
        items = items[: max_chars // 2 + 1]
    text = "\\".join(items)
    if total is not None:
        return safe_text(f"{text[:max_chars]}… ({total:,} values)")
    return safe_text(_cut(text, max_chars))


def _little_endian(ds: Dataset | None) -> bool:
    """The byte order ``ds`` was read in (items of sequences included); little endian if unknown."""
    if ds is None:
        return True
    encoding = getattr(ds, "original_encoding", (None, None))
    if isinstance(encoding, tuple) and len(encoding) == 2 and encoding[1] is not None:
        return bool(encoding[1])
    return getattr(ds, "is_little_endian", None) is not False


def _encoded_length(elem: DataElement, encodings: Any) -> int | None:
    """Value length in bytes as the element would be encoded (even-padded); None for sequences."""
    vr = str(elem.VR)
    value = elem.value
    if vr == "SQ":
        return None
    if value is None:
        return 0
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    size = _FIXED_SIZE.get(vr)
    if size is not None:
        return size * (len(value) if isinstance(value, (list, tuple)) or hasattr(value, "__len__") else 1)
    if vr == "PN" and not isinstance(value, (list, tuple)) and hasattr(value, "original_string"):
        raw = value.original_string
        if isinstance(raw, bytes):
            return len(raw) + (len(raw) & 1)
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    if text.isascii() or vr not in _TEXT_VRS:
        n = len(text)
    else:
        try:
            from pydicom.charset import encode_string

            n = len(encode_string(text, list(encodings or ["iso8859"])))
        except Exception:  # noqa: BLE001 - unencodable: count UTF-8 bytes instead
            n = len(text.encode("utf-8", "replace"))
    return n + (n & 1)


# ------------------------------------------------------------------------------------------------ rows


#: rows are made by the hundred thousand for a big sequence: going through ``__init__`` costs a call and a
#: dict more than filling ``__dict__`` directly (what :func:`element_row` and :func:`item_row` do; every
#: field is set, as ``__init__`` would)
_new_row = object.__new__


def element_row(
    tag: int,
    path: tuple[int, ...],
    depth: int,
    vr: str,
    value: str,
    length: int | None,
    creator: str,
    parent: int | None,
) -> TagRow:
    """The row of an element: named from the dictionary (private ones with their ``creator``)."""
    keyword, name = describe_tag(tag, creator)
    row = _new_row(TagRow)
    row.__dict__.update(
        {
            "tag": tag,
            "path": path,
            "depth": depth,
            "vr": vr,
            "keyword": keyword,
            "name": name,
            "value": value,
            "length": length,
            "is_sequence": vr == "SQ",
            "is_item": False,
            "private_creator": safe_text(creator) if creator else "",
            "parent": parent,
        }
    )
    return row


def item_row(path: tuple[int, ...], depth: int, index: int, count: int, parent: int | None) -> TagRow:
    """The row of item ``index`` of a sequence of ``count`` items."""
    row = _new_row(TagRow)
    row.__dict__.update(
        {
            "tag": ITEM_TAG,
            "path": path,
            "depth": depth,
            "vr": "na",
            "keyword": "Item",
            "name": "Item",
            "value": f"item {index + 1} of {count}",
            "length": None,
            "is_sequence": False,
            "is_item": True,
            "private_creator": "",
            "parent": parent,
        }
    )
    return row


if TYPE_CHECKING:

    class RowSource(Protocol):
        """How :func:`walk_rows` reads one kind of dataset: pydicom's (here) or the quick reader's.

        Everything about how a value is shown lives behind :meth:`element`; the order of rows, items,
        private creators, nesting and ``max_depth`` live in :func:`walk_rows`, once for both readers.
        """

        def tags(self, ds: Any) -> Sequence[int]:
            """The tags of ``ds`` in ascending order."""

        def creator(self, ds: Any, tag: int) -> str:
            """The value of the private creator element ``tag`` of ``ds`` (``""`` if it has none)."""

        def element(self, ds: Any, tag: int) -> tuple[str, str, int | None, Sequence[Any] | None]:
            """``(VR, display value, length, items)`` of element ``tag``; items only for a sequence."""


def walk_rows(
    source: RowSource,
    top: Any,
    rows: list[TagRow],
    *,
    include_private: bool,
    max_depth: int | None,
) -> None:
    """Append the rows of dataset ``top`` to ``rows`` in document order, items of sequences included.

    An explicit stack, not recursion: a file nesting sequences thousands deep cannot overflow it.
    ``max_depth`` limits how many sequence levels are expanded (None: all).
    """
    # frames: [False, dataset, tags, next tag, path prefix, depth, parent row, creators seen]
    #      or [True, items, next item, path prefix, depth, parent row]
    stack: list[list[Any]] = [[False, top, source.tags(top), 0, (), 0, None, {}]]
    append = rows.append
    element = source.element
    while stack:
        frame = stack[-1]
        if frame[0]:
            _seq, items, pos, prefix, depth, parent = frame
            if pos >= len(items):
                stack.pop()
                continue
            frame[2] = pos + 1
            item_path = prefix + (pos,)
            append(item_row(item_path, depth, pos, len(items), parent))
            item = items[pos]
            stack.append([False, item, source.tags(item), 0, item_path, depth + 1, len(rows) - 1, {}])
            continue
        _seq, ds, tags, pos, prefix, depth, parent, creators = frame
        if pos >= len(tags):
            stack.pop()
            continue
        frame[3] = pos + 1
        tag = tags[pos]
        creator = ""
        if tag & 0x10000:  # an odd group: private
            if not include_private:
                continue
            group, el = tag >> 16, tag & 0xFFFF
            if 0x0010 <= el <= 0x00FF:
                creators[(group, el)] = source.creator(ds, tag)
            elif el >= 0x1000:
                creator = creators.get((group, el >> 8), "")
        path = prefix + (tag,)
        vr, value, length, items = element(ds, tag)
        append(element_row(tag, path, depth, vr, value, length, creator, parent))
        if items and (max_depth is None or depth // 2 + 1 <= max_depth):
            stack.append([True, items, 0, path, depth + 1, len(rows) - 1])


class _PydicomSource:
    """:class:`RowSource` over pydicom datasets."""

    def __init__(self, max_value_chars: int | None) -> None:
        self.max_chars = max_value_chars
        self._charset_ds: Any = None
        self._charset_value: Any = None

    def tags(self, ds: Any) -> list[int]:
        return sorted(int(t) for t in ds.keys())  # noqa: SIM118 (a Dataset iterates over elements)

    def creator(self, ds: Any, tag: int) -> str:
        try:
            return str(ds[tag].value or "")
        except Exception:  # noqa: BLE001 - an unreadable creator names nothing
            return ""

    def element(self, ds: Any, tag: int) -> tuple[str, str, int | None, Sequence[Any] | None]:
        raw_length = None
        try:
            elem = ds.get_item(tag)  # unconverted (raw) elements still know their length in the file
            if type(elem).__name__ == "RawDataElement":
                raw_length = elem.length
                elem = ds[tag]
            else:  # converted already: read_dataset noted the lengths in the file
                raw_length = (ds.__dict__.get(RAW_LENGTHS_ATTR) or {}).get(tag)
        except Exception as exc:  # noqa: BLE001 - a value pydicom cannot convert: show why, keep going
            return self._broken(ds, tag, exc)
        try:
            vr = str(elem.VR)
            value = value_text(elem, ds, max_chars=self.max_chars)
            if raw_length is not None and raw_length != _UNDEFINED:
                length: int | None = raw_length
            else:
                length = _encoded_length(elem, self._charset(ds))
        except Exception as exc:  # noqa: BLE001 - a value that cannot be shown: say why, keep going
            return self._broken(ds, tag, exc)
        items = list(elem.value) if vr == "SQ" and elem.value else None
        return vr, value, length, items

    def _charset(self, ds: Any) -> Any:
        """The dataset's character set (looked up once per dataset)."""
        if ds is not self._charset_ds:
            self._charset_ds = ds
            self._charset_value = getattr(ds, "_character_set", None)
        return self._charset_value

    @staticmethod
    def _broken(ds: Any, tag: int, exc: BaseException) -> tuple[str, str, int | None, None]:
        """The row values of an element whose value cannot be converted or shown."""
        try:
            raw = ds.get_item(tag)
        except Exception:  # noqa: BLE001
            raw = None
        length = getattr(raw, "length", None)
        vr = str(getattr(raw, "VR", None) or "??")
        value = safe_text(f"<cannot decode: {type(exc).__name__}: {str(exc)[:120]}>")
        return vr, value, length if isinstance(length, int) and length != _UNDEFINED else None, None


def tag_rows(
    ds: Dataset,
    *,
    include_meta: bool = True,
    include_private: bool = True,
    max_depth: int | None = None,
    max_value_chars: int | None = DEFAULT_MAX_VALUE_CHARS,
) -> list[TagRow]:
    """Flatten ``ds`` into inspector rows, file meta first, in document order.

    Args:
        ds: A pydicom dataset (a ``FileDataset`` brings its ``file_meta``).
        include_meta: Include the file meta information (group 0002).
        include_private: Include private elements (odd groups).
        max_depth: Expand sequences down to this nesting level (0: top level only, sequences shown
            with their item count; None: everything).
        max_value_chars: Cut display values longer than this (None: never).

    Returns:
        The rows; ``rows[i].parent`` indexes into the same list.
    """
    rows: list[TagRow] = []
    source = _PydicomSource(max_value_chars)
    meta = getattr(ds, "file_meta", None) if include_meta else None
    if meta is not None and len(meta):
        walk_rows(source, meta, rows, include_private=include_private, max_depth=max_depth)
    walk_rows(source, ds, rows, include_private=include_private, max_depth=max_depth)
    return rows


def select_rows(rows: Sequence[TagRow], query: TagPath | str | Sequence[Step]) -> list[int]:
    """Indices of the element rows whose path matches ``query`` (or its steps), in document order.

    The one tag-query matcher: rows from pydicom (:func:`tag_rows`) and from the quick reader alike.
    """
    if isinstance(query, str):
        query = parse_tag_query(query)
    steps = query.steps if isinstance(query, TagPath) else query
    found = [i for i, row in enumerate(rows) if not row.is_item and _matches(steps, 0, row.path, 0)]
    return sorted(found, key=lambda i: rows[i].path)


def _matches(steps: Sequence[Step], si: int, path: tuple[int, ...], pi: int) -> bool:
    step = steps[si]
    if step.tag is None:  # '*': zero levels, or one (sequence, item) level and stay
        if _matches(steps, si + 1, path, pi):
            return True
        return pi + 2 < len(path) and _matches(steps, si, path, pi + 2)
    if pi >= len(path) or path[pi] != step.tag:
        return False
    if si == len(steps) - 1:
        return pi == len(path) - 1
    if pi + 2 >= len(path):
        return False
    if step.item is not None and path[pi + 1] != step.item:
        return False
    return _matches(steps, si + 1, path, pi + 2)


def subtree(rows: Sequence[TagRow], index: int, max_depth: int | None) -> list[TagRow]:
    """The row at ``index`` and the rows inside it (a sequence's items), cut at ``max_depth`` levels
    counted from the top of the file (a row at depth ``d`` lies ``(d + 1) // 2`` sequence levels deep)."""
    first = rows[index]
    out = [first]
    for row in rows[index + 1 :]:
        if row.depth <= first.depth:
            break
        if max_depth is None or (row.depth + 1) // 2 <= max_depth:
            out.append(row)
    return out


def private_creator_of(ds: Dataset, tag: int) -> str:
    """The private creator string for private ``tag`` in ``ds`` (``""`` if none or not private)."""
    group, el = tag >> 16, tag & 0xFFFF
    if not group & 1 or el < 0x1000:
        return ""
    try:
        creator = ds.get((group << 16) | (el >> 8))
        return str(creator.value) if creator is not None and creator.value else ""
    except Exception:  # noqa: BLE001
        return ""


def with_ancestors(rows: Sequence[TagRow], indices: Iterable[int]) -> list[int]:
    """Return ``indices`` plus the indices of all their parent rows, sorted (matches shown in context)."""
    keep: set[int] = set()
    for i in indices:
        j: int | None = i
        while j is not None and j not in keep:
            keep.add(j)
            j = rows[j].parent
    return sorted(keep)


# --------------------------------------------------------------------------------------------- queries

_TAG_NUM = re.compile(r"^\(?\s*([0-9A-Fa-f]{4})\s*,\s*([0-9A-Fa-f]{4})\s*\)?$")
_TAG_HEX = re.compile(r"^(?:0[xX])?([0-9A-Fa-f]{8})$")
_STEP = re.compile(r"^(?P<tag>[^\[\]]+?)\s*(?:\[\s*(?P<idx>\d+|\*)\s*\])?$")


def parse_tag(text: str) -> int:
    """Parse one tag: a keyword or a number (``0010,0010``, ``(0010,0010)``, ``00100010``, ``0x00100010``).

    Raises:
        TagQueryError: neither a known keyword nor a tag number.
    """
    text = text.strip()
    m = _TAG_NUM.match(text)
    if m:
        return (int(m.group(1), 16) << 16) | int(m.group(2), 16)
    from tui_dicom.core.dicom.dictionary import tag_for_keyword

    tag = tag_for_keyword(text)
    if tag is not None:
        return int(tag)
    m = _TAG_HEX.match(text)
    if m:
        return int(m.group(1), 16)
    raise TagQueryError(f"unknown tag {safe_text(text)!r}: not a DICOM keyword or a gggg,eeee number")


def parse_tag_query(text: str) -> TagPath:
    """Parse a tag query into a :class:`TagPath`.

    Forms: ``PatientID``, ``0010,0020``, ``(0010,0020)``, ``00100020``, ``Seq[0].Keyword`` (item 0),
    ``Seq.Keyword`` or ``Seq[*].Keyword`` (every item), ``*.Keyword`` (at any depth, top level included).

    Raises:
        TagQueryError: the query is malformed or names an unknown keyword.
    """
    if not text or not text.strip():
        raise TagQueryError("empty tag query")
    parts = _split_path(text.strip())
    steps: list[Step] = []
    for part in parts:
        part = part.strip()
        if part == "*" or part == "**":
            if steps and steps[-1].tag is None:
                continue
            steps.append(Step(None))
            continue
        m = _STEP.match(part)
        if not m:
            raise TagQueryError(f"cannot parse {safe_text(part)!r} in tag query {safe_text(text)!r}")
        idx = m.group("idx")
        steps.append(Step(parse_tag(m.group("tag")), None if idx in (None, "*") else int(idx)))
    if steps[-1].tag is None:
        raise TagQueryError(f"tag query {safe_text(text)!r} must end with a tag, not '*'")
    if steps[-1].item is not None:
        raise TagQueryError(f"tag query {safe_text(text)!r} ends with an item index; add the tag inside it")
    return TagPath(tuple(steps), text)


def _split_path(text: str) -> list[str]:
    """Split on dots outside brackets and parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "." and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    if any(not p.strip() for p in parts):
        raise TagQueryError(f"empty step in tag query {safe_text(text)!r}")
    return parts


def select(ds: Dataset, query: TagPath | str) -> list[Match]:
    """Return the elements of ``ds`` matching ``query``, in document order.

    Matched on the rows of ``ds`` by :func:`select_rows` (the one matcher), then looked up in ``ds``.

    Args:
        ds: The dataset (file meta is searched for group 0002 tags at the top level).
        query: A :class:`TagPath` or query text (parsed with :func:`parse_tag_query`).

    Returns:
        One :class:`Match` per element found (none if absent; an element whose value pydicom cannot
        convert is not selectable).
    """
    rows = tag_rows(ds, max_value_chars=0)
    found: dict[tuple[int, ...], Match] = {}
    for i in select_rows(rows, query):
        path = rows[i].path
        if path in found:
            continue
        holder: Any = ds
        try:
            if len(path) == 1 and path[0] >> 16 == 0x0002 and path[0] in getattr(ds, "file_meta", ()):
                holder = ds.file_meta
            for j in range(0, len(path) - 1, 2):
                holder = holder[path[j]].value[path[j + 1]]
            found[path] = Match(path, holder[path[-1]], holder)
        except Exception:  # noqa: BLE001 - unconvertible value: not selectable
            continue
    return list(found.values())


# ------------------------------------------------------------------------------------ inspector search

_HEXISH = re.compile(r"^[0-9a-f]+$")


def filter_rows(rows: Sequence[TagRow], text: str) -> list[int]:
    """Indices of rows matching the inspector search ``text`` (case-insensitive).

    A row matches when ``text`` is a substring of its keyword, name or value, or when ``text`` is a tag
    number in any form (``0010,0010``, ``(0010,0010)``, ``00100010``, ``0x00100010``, or a prefix such
    as ``0010,``) matching its tag. An empty text matches every row. Use :func:`with_ancestors` to show
    matches inside sequences together with their parents.
    """
    needle = text.strip().casefold()
    if not needle:
        return list(range(len(rows)))
    hexq = re.sub(r"[()\s,]", "", needle)
    if hexq.startswith("0x"):
        hexq = hexq[2:]
    tag_query = hexq if len(hexq) >= 4 and _HEXISH.match(hexq) else ""
    out = []
    for i, row in enumerate(rows):
        if (
            needle in row.keyword.casefold()
            or needle in row.name.casefold()
            or needle in row.value.casefold()
            or (tag_query and f"{row.tag:08x}".startswith(tag_query) and not row.is_item)
            or (row.private_creator and needle in row.private_creator.casefold())
        ):
            out.append(i)
    return out


def varying_tags(datasets: Sequence[Dataset], *, include_meta: bool = False) -> list[tuple[int, ...]]:
    """Paths of the elements whose values differ between ``datasets`` (e.g. the instances of a series).

    An element present in some datasets and absent from others varies too. Values are compared in
    full (not cut). Sequences are compared element by element inside their items.

    Args:
        datasets: Headers of the instances.
        include_meta: Compare the file meta too (MediaStorageSOPInstanceUID always varies).

    Returns:
        Paths (as in :attr:`TagRow.path`) in document order; empty for fewer than two datasets.
    """
    if len(datasets) < 2:
        return []
    first: dict[tuple[int, ...], str] | None = None
    varying: set[tuple[int, ...]] = set()
    seen_all: set[tuple[int, ...]] = set()
    for ds in datasets:
        values = {
            r.path: f"{r.vr}:{r.value}"
            for r in tag_rows(ds, include_meta=include_meta, max_value_chars=None)
            if not r.is_item and r.tag not in PIXEL_DATA_TAGS
        }
        if first is None:
            first = values
            seen_all = set(values)
            continue
        for p, v in values.items():
            if first.get(p) != v:
                varying.add(p)
        varying.update(seen_all - set(values))
    return sorted(varying)


def indices_for_paths(rows: Sequence[TagRow], paths: Iterable[tuple[int, ...]]) -> list[int]:
    """Indices of the rows whose path is in ``paths``."""
    wanted = set(paths)
    return [i for i, r in enumerate(rows) if r.path in wanted]


# ------------------------------------------------------------------------------------------ DICOM JSON


def is_bulk(elem: DataElement) -> bool:
    """True for pixel data and binary values longer than :data:`BULK_THRESHOLD` bytes."""
    if elem.tag in PIXEL_DATA_TAGS:
        return True
    value = elem.value
    return (
        str(elem.VR) in BINARY_VRS and isinstance(value, (bytes, bytearray)) and len(value) > BULK_THRESHOLD
    )


def strip_dataset(ds: Dataset, *, include_private: bool = True) -> Dataset:
    """A shallow copy of ``ds`` without bulk data (and without private elements if asked), recursively."""
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as PydicomSequence

    root = Dataset()
    stack: list[tuple[Dataset, Dataset]] = [(ds, root)]
    while stack:
        src, dst = stack.pop()
        for tag in sorted(src.keys()):
            if not include_private and (int(tag) >> 16) & 1:
                continue
            try:
                elem = src[tag]
            except Exception:  # noqa: BLE001 - unconvertible: left out, like an invalid tag
                continue
            if is_bulk(elem):
                continue
            if str(elem.VR) == "SQ":
                items = []
                for item in elem.value or []:
                    new = Dataset()
                    items.append(new)
                    stack.append((item, new))
                dst.add(DataElement(elem.tag, "SQ", PydicomSequence(items)))
            else:
                dst.add(elem)
    return root


def to_dicom_json(ds: Dataset, *, include_private: bool = True) -> dict[str, Any]:
    """The DICOM JSON model (PS3.18 Annex F) of ``ds`` with bulk data left out.

    Pixel data and binary values over :data:`BULK_THRESHOLD` bytes are omitted entirely (no
    ``BulkDataURI``: there is nothing to serve them); elements whose value pydicom cannot encode in
    JSON are omitted too. The file meta is not part of the model.

    Args:
        ds: The dataset.
        include_private: Keep private elements.

    Returns:
        A JSON-serialisable dict keyed by ``"GGGGEEEE"``.
    """
    stripped = strip_dataset(ds, include_private=include_private)
    return stripped.to_json_dict(bulk_data_threshold=1 << 62, suppress_invalid_tags=True)


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def json_text(obj: Any, *, indent: int | None = 2) -> str:
    """Serialise ``obj`` as JSON that is inert in a terminal (controls, DEL, C1, bidi as ``\\uXXXX``)."""
    import json

    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

"""One resource budget for everything read from a user's files, and the one error that enforces it.

Hostile or broken input must never hang the viewer or take gigabytes: every place that reads bytes,
inflates a stream, allocates a frame, expands a lookup table or builds a list of values checks its
count against :func:`current` and raises :class:`LimitExceeded`, whose message is one line naming the
file, the dimension and the limit, so the user knows what to raise when the file is genuine.

The defaults let real studies open (a 4,000-slice CT, a 30,000-record PACS CD, a 16-bit 4,096²
mammogram, a 1,000-frame ultrasound) while keeping one hostile file within ~5 s of CPU and ~500 MB.
A user raises a limit with ``--resource-limit NAME=VALUE`` (any command or the viewer) or the environment
variable ``TUI_DICOM_LIMITS="NAME=VALUE,NAME=VALUE"``; byte sizes take ``K``/``M``/``G`` suffixes.

This is a bottom-layer utility (like :mod:`tui_dicom.core.errors`): it imports nothing of the core but
the error base class, so every subsystem may use it.
"""

from __future__ import annotations

import _thread
import os
from collections.abc import Callable, Iterable, Mapping

from tui_dicom.core.errors import DicomViewerError

# Every command imports this module, ``tui-dicom dump FILE`` among them, which must start like a native
# tool: ``dataclasses`` (with inspect, ast, dis, tokenize), ``typing``, ``threading`` and ``re`` cost
# more at import than the quick dump of a file. :func:`_record` gives :class:`Limits` the frozen
# dataclass behaviour it needs (and tells the type checker so through ``dataclass_transform``).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_kwargs: object) -> Callable[[Callable[..., object]], Callable[..., object]]:
        return lambda fn: fn


@dataclass_transform(frozen_default=True)
def _record(cls: type) -> type:
    """Make ``cls`` a frozen record of its annotated fields (with their defaults): init, eq, hash, repr."""
    names = tuple(cls.__annotations__)
    defaults = {name: cls.__dict__[name] for name in names}

    def __init__(self: object, **values: object) -> None:
        unknown = set(values) - set(names)
        if unknown:
            raise TypeError(f"{cls.__name__}() got unexpected keyword arguments {sorted(unknown)}")
        for name in names:
            object.__setattr__(self, name, values.get(name, defaults[name]))

    def __setattr__(self: object, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def key(self: object) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in names)

    def __eq__(self: object, other: object) -> bool:
        return key(self) == key(other) if other.__class__ is self.__class__ else NotImplemented

    def __repr__(self: object) -> str:
        return f"{cls.__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"

    def __hash__(self: object) -> int:
        return hash(key(self))

    def __reduce__(self: object) -> tuple[object, ...]:
        return (_rebuild, (cls, dict(zip(names, key(self), strict=True))))

    # a hand-made dataclass (see above): mypy refuses assigning to a method (misc) and checks each function
    # against object's own signature (assignment); typed callers see dataclass_transform's view instead
    cls.__init__ = __init__  # type: ignore[misc]
    cls.__setattr__ = __setattr__  # type: ignore[assignment]
    cls.__delattr__ = __setattr__  # type: ignore[assignment]
    cls.__eq__ = __eq__  # type: ignore[assignment]
    cls.__hash__ = __hash__  # type: ignore[assignment]
    cls.__repr__ = __repr__  # type: ignore[assignment]
    cls.__reduce__ = __reduce__  # type: ignore[assignment]
    cls._fields = names  # type: ignore[attr-defined]
    return cls


def _rebuild(cls: type, values: dict[str, object]) -> object:
    """Unpickle a record (decoder child processes get the limits pickled)."""
    return cls(**values)


#: environment variable read at start-up (and inherited by decoder child processes)
ENV_VAR = "TUI_DICOM_LIMITS"

_KIB, _MIB, _GIB = 1024, 1024**2, 1024**3


@_record
class Limits:
    """The resource budget. Each field is one dimension; ``--resource-limit NAME=VALUE`` names it with dashes."""

    # -- per file (owned by the per-file bounds) ----------------------------------------------------
    #: bytes read from one file or ZIP member into memory (a ZIP member is read whole to be decoded)
    file_bytes: int = 256 * _MIB
    #: bytes of one element value other than pixel data (an encapsulated PDF, a waveform, a LUT)
    element_bytes: int = 64 * _MIB
    #: one decoded frame: Rows x Columns x Samples x bytes per sample. 64 MB holds a 16-bit 4,096 x
    #: 8,192 mammogram or an RGB 4,096² picture; windowing makes float copies of a frame, so 64 MB
    #: of stored values already costs ~350 MB at the peak
    frame_bytes: int = 64 * _MIB
    #: bytes a deflated dataset may inflate to (pydicom keeps the stream and a copy of each value)
    inflated_bytes: int = 128 * _MIB
    #: entries of one lookup table after segmented-LUT expansion (the standard's maximum is 65,536)
    lut_entries: int = 65_536
    #: values in one multi-valued element (a contour of 30,000 points has 90,000)
    element_values: int = 250_000
    #: elements in one dataset (top level or one sequence item)
    dataset_elements: int = 50_000
    #: CPU seconds one decoder call may take in its child process before it is stopped
    decode_seconds: float = 4.0
    #: address space of a decoder child process
    decode_memory: int = 1536 * _MIB

    # -- per tree (owned by the tree bounds: DICOMDIRs, folders, ZIPs) -----------------------------
    # Fields below this line are placeholders that the tree-scale work fills in; add new tree
    # dimensions here and per-file ones above, so the two halves never edit the same lines.
    #: directory records read from one DICOMDIR (3x a 30,000-record PACS CD; 100,000 records take
    #: ~3 s of CPU and ~50 MB, so a 1,000,000-record DICOMDIR stays within the tree budget)
    dicomdir_records: int = 100_000
    #: DICOMDIR files followed in one opened tree
    dicomdir_files: int = 1_000
    #: entries listed in one folder (and files scanned in one opened tree)
    folder_entries: int = 200_000
    #: frames of one instance (NumberOfFrames from a header or a DICOMDIR record; a 4D cardiac CT in
    #: one enhanced object has ~6,000)
    instance_frames: int = 20_000
    # -- end of the tree section ---------------------------------------------------------------------


#: the fields of :class:`Limits`, in order
_FIELDS: tuple[str, ...] = Limits._fields  # type: ignore[attr-defined]  # set by the decorator

#: help text per field, shown by ``--resource-limit`` and in error hints
DESCRIPTIONS: dict[str, str] = {
    "file_bytes": "bytes read from one file or ZIP member",
    "element_bytes": "bytes of one element value (other than pixel data)",
    "frame_bytes": "bytes of one decoded frame (rows x columns x samples x bytes)",
    "inflated_bytes": "bytes a deflated dataset may inflate to",
    "lut_entries": "entries of one lookup table after segment expansion",
    "element_values": "values in one multi-valued element",
    "dataset_elements": "elements in one dataset or sequence item",
    "decode_seconds": "CPU seconds per decoder call",
    "decode_memory": "address space of a decoder child process",
    "dicomdir_records": "records read from one DICOMDIR",
    "dicomdir_files": "DICOMDIR files followed in one tree",
    "folder_entries": "entries scanned in one folder or tree",
    "instance_frames": "frames of one instance (NumberOfFrames)",
}

_BYTE_FIELDS = {"file_bytes", "element_bytes", "frame_bytes", "inflated_bytes", "decode_memory"}

_lock = _thread.allocate_lock()
_current = Limits()


class LimitExceeded(DicomViewerError):
    """An input needs more than the budget allows; refused before the work (or memory) is spent.

    Attributes:
        file: The file (already terminal-safe text) or ``""`` when no single file is concerned.
        dimension: The :class:`Limits` field name.
        value: What the input asks for (``None`` when only "more than the limit" is known).
        limit: The limit in force.
    """

    def __init__(self, file: str, dimension: str, value: int | float | None, limit: int | float) -> None:
        self.file = file
        self.dimension = dimension
        self.value = value
        self.limit = limit
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return where + self.reason

    @property
    def reason(self) -> str:
        """The message without the file name (for callers that print the file themselves)."""
        what = DESCRIPTIONS.get(self.dimension, self.dimension.replace("_", " "))
        limit = _fmt(self.dimension, self.limit)
        flag = option_name(self.dimension)
        if self.value is None:
            return f"{what}: over the limit of {limit} (raise with --resource-limit {flag}=N)"
        return f"{what}: {_fmt(self.dimension, self.value)} exceeds the limit of {limit} (raise with --resource-limit {flag}=N)"

    @reason.setter
    def reason(self, value: str) -> None:
        # the base class lets a subclass store a bare reason; this one is always derived from its fields
        raise AttributeError("LimitExceeded.reason is derived from its fields")

    def __reduce__(self) -> tuple[type[LimitExceeded], tuple[str, str, int | float | None, int | float]]:
        return (LimitExceeded, (self.file, self.dimension, self.value, self.limit))


def _fmt(dimension: str, value: int | float) -> str:
    if dimension in _BYTE_FIELDS:
        if value >= _GIB and value % _GIB == 0:
            return f"{value // _GIB:,} GB"
        if value >= _MIB and value % _MIB == 0:
            return f"{value // _MIB:,} MB"
        return f"{int(value):,} bytes"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}"
    return f"{int(value):,}"


def option_name(dimension: str) -> str:
    """The ``--resource-limit`` name of a field (``frame_bytes`` -> ``frame-bytes``)."""
    return dimension.replace("_", "-")


def current() -> Limits:
    """The limits in force (defaults, then ``TUI_DICOM_LIMITS``, then ``--resource-limit`` options)."""
    return _current


def set_limits(limits: Limits) -> None:
    """Replace the limits in force, and export them so decoder child processes inherit them."""
    global _current
    with _lock:
        _current = limits
        os.environ[ENV_VAR] = format_spec(limits)


_SUFFIX = {"": 1, "k": _KIB, "kb": _KIB, "m": _MIB, "mb": _MIB, "g": _GIB, "gb": _GIB}


def _parse_value(name: str, text: str) -> int | float:
    import re

    match = re.fullmatch(r"\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if match is None:
        raise ValueError(f"limit {option_name(name)}: {text!r} is not a number")
    number = float(match.group(1).replace(",", "").replace("_", ""))
    suffix = match.group(2).lower()
    if suffix not in _SUFFIX or (suffix and name not in _BYTE_FIELDS):
        raise ValueError(f"limit {option_name(name)}: unknown unit {match.group(2)!r}")
    value = number * _SUFFIX[suffix]
    if value <= 0:
        raise ValueError(f"limit {option_name(name)} must be positive")
    if name == "decode_seconds":
        return value
    return int(value)


def parse_spec(items: Iterable[str], base: Limits | None = None) -> Limits:
    """Return ``base`` (default: :func:`current`) with ``NAME=VALUE`` items applied.

    Items may themselves be comma-separated lists (the form of ``TUI_DICOM_LIMITS``).

    Raises:
        ValueError: an unknown name or a value that is not a positive number; the message says which.
    """
    names = set(_FIELDS)
    changes: dict[str, int | float] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, text = part.partition("=")
            name = key.strip().replace("-", "_")
            if not sep or name not in names:
                known = ", ".join(option_name(n) for n in sorted(names))
                raise ValueError(f"unknown limit {key.strip()!r} (known: {known})")
            changes[name] = _parse_value(name, text)
    start = base if base is not None else current()
    return Limits(**{**{n: getattr(start, n) for n in _FIELDS}, **changes})


def format_spec(limits: Limits) -> str:
    """``limits`` as a ``TUI_DICOM_LIMITS`` string (only fields that differ from the defaults)."""
    default = Limits()
    parts = [
        f"{option_name(name)}={getattr(limits, name)}"
        for name in _FIELDS
        if getattr(limits, name) != getattr(default, name)
    ]
    return ",".join(parts)


def configure(options: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> Limits:
    """Set the limits from the environment variable, then ``--resource-limit`` options (which win).

    Raises:
        ValueError: a malformed item (the caller reports it as a usage error).
    """
    env = os.environ if environ is None else environ
    limits = parse_spec([env.get(ENV_VAR, "")], Limits())
    limits = parse_spec(options, limits)
    set_limits(limits)
    return limits


def check(file: str, dimension: str, value: int | float) -> None:
    """Raise :class:`LimitExceeded` when ``value`` is over the current limit named ``dimension``."""
    limit = getattr(_current, dimension)
    if value > limit:
        raise LimitExceeded(file, dimension, value, limit)


def _load_environment() -> None:
    """Honour ``TUI_DICOM_LIMITS`` at import (decoder children, library use); bad items are ignored
    here and reported by :func:`configure` when the CLI starts."""
    global _current
    spec = os.environ.get(ENV_VAR, "")
    if spec:
        try:
            _current = parse_spec([spec], Limits())
        except ValueError:
            _current = Limits()


_load_environment()

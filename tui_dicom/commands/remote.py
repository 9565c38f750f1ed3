"""What the commands share about archives: options, filters, and a remote instance fetched for dump/export.

A remote instance is named by its place in the archive:

- ``dicom://AET@HOST:PORT/STUDY_UID/SERIES_UID/SOP_UID``
- ``http(s)://HOST[:PORT]/PATH/studies/STUDY_UID/series/SERIES_UID/instances/SOP_UID`` (its WADO-RS URL)
- ``NAME:STUDY_UID/SERIES_UID/SOP_UID`` for a named archive.

It is retrieved into the private cache and the command reads the cached file like a local one.
This module imports nothing heavy at import time (``dump`` must start fast).
"""

from __future__ import annotations

import argparse
import re

#: ``typing`` is for the type checker only: ``tui-dicom dump`` imports this module and must start fast
TYPE_CHECKING = False
if TYPE_CHECKING:
    from tui_dicom.core.archive.address import ArchiveAddress
    from tui_dicom.core.archive.query import QueryFilters

_URL_RE = re.compile(r"^(dicom|https?)://", re.IGNORECASE)
_NAMED_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*:(?!//)")


def is_remote(text: str) -> bool:
    """True for an archive address or a remote instance (not a local path, not a ZIP member)."""
    if _URL_RE.match(text):
        return True
    if _NAMED_RE.match(text):
        # "NAME:" or "NAME:STUDY/SERIES/SOP"; a Windows drive letter or a local file "a:b" is not meant
        from tui_dicom.core.archive.address import load_config

        try:
            archives = load_config().get("archives", {})
        except Exception:  # noqa: BLE001 - a broken config is reported when the address is used
            return text.endswith(":")
        return isinstance(archives, dict) and text.split(":", 1)[0] in archives
    return False


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--aet``, ``--retrieve``, ``--move-port``, ``--timeout`` (no secrets: those come from the env)."""
    group = parser.add_argument_group("archives (dicom://AET@HOST:PORT, http(s)://HOST/PATH, NAME:)")
    group.add_argument("--aet", metavar="AET", default=None, help="our calling AE title (default TUIDICOM)")
    group.add_argument(
        "--retrieve",
        choices=["get", "move"],
        default=None,
        help="DIMSE retrieve: C-GET on our association (default) or C-MOVE to a local Storage SCP",
    )
    group.add_argument(
        "--move-port",
        type=int,
        default=None,
        metavar="PORT",
        help="port of the local C-MOVE SCP (default 11113)",
    )
    group.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="network timeout in seconds (default 30)"
    )
    group.add_argument(
        "--disk-cache-mb",
        type=int,
        default=2048,
        metavar="MB",
        help="disk space for retrieved instances in $XDG_CACHE_HOME/tui-dicom (default 2048)",
    )


def add_filter_arguments(parser: argparse.ArgumentParser, *, with_uids: bool = True) -> None:
    """The study-level filters of a query, and ``--limit``."""
    group = parser.add_argument_group("query filters (archives; * and ? wildcards)")
    group.add_argument("--patient", metavar="NAME", default="", help="patient name, e.g. 'DOE^J*'")
    group.add_argument("--patient-id", metavar="ID", default="", help="patient ID")
    group.add_argument(
        "--date", metavar="DATE", default="", help="study date YYYYMMDD or range FROM-TO (either end open)"
    )
    group.add_argument("--modality", metavar="MOD", default="", help="modality in study, e.g. CT")
    group.add_argument("--accession", metavar="ACC", default="", help="accession number")
    group.add_argument("--description", metavar="TEXT", default="", help="study description")
    if with_uids:
        group.add_argument("--study", metavar="UID", default="", help="Study Instance UID")
        group.add_argument("--series", metavar="UID", default="", help="Series Instance UID")
    group.add_argument(
        "--limit", type=int, default=None, metavar="N", help="at most N studies (the output says when cut)"
    )


def filters_from(args: argparse.Namespace) -> QueryFilters:
    """The :class:`QueryFilters` of parsed arguments (the date normalised)."""
    from tui_dicom.core.archive.query import QueryFilters, normalise_date

    return QueryFilters(
        patient_name=getattr(args, "patient", "") or "",
        patient_id=getattr(args, "patient_id", "") or "",
        study_date=normalise_date(getattr(args, "date", "") or ""),
        modality=getattr(args, "modality", "") or "",
        accession_number=getattr(args, "accession", "") or "",
        study_description=getattr(args, "description", "") or "",
        study_uid=getattr(args, "study", "") or "",
        series_uid=getattr(args, "series", "") or "",
    )


def address_from(text: str, args: argparse.Namespace) -> ArchiveAddress:
    """Parse ``text`` with the connection options of ``args``."""
    from tui_dicom.core.archive.address import parse_address

    return parse_address(
        text,
        calling_aet=getattr(args, "aet", None),
        retrieve=getattr(args, "retrieve", None),
        move_port=getattr(args, "move_port", None),
    )


def split_instance(text: str) -> tuple[str, str, str, str]:
    """``(archive address, study, series, sop)`` of a remote instance name (see the module docstring).

    Raises:
        AddressError: not a remote instance.
    """
    from tui_dicom.core.archive.errors import AddressError

    m = re.match(
        r"^(https?://.+?)/studies/([^/]+)/series/([^/]+)/instances/([^/?#]+)/?$", text, re.IGNORECASE
    )
    if m:
        return m.group(1), m.group(2), m.group(3), m.group(4)
    m = re.match(r"^(dicom://[^/]+)/([^/]+)/([^/]+)/([^/]+)/?$", text, re.IGNORECASE)
    if m:
        return m.group(1), m.group(2), m.group(3), m.group(4)
    m = re.match(r"^([A-Za-z][A-Za-z0-9_.-]*:)/?([^/]+)/([^/]+)/([^/]+)/?$", text)
    if m and not _URL_RE.match(text):
        return m.group(1), m.group(2), m.group(3), m.group(4)
    raise AddressError(
        "a remote instance is dicom://AET@HOST:PORT/STUDY/SERIES/SOP, "
        "http(s)://HOST/PATH/studies/STUDY/series/SERIES/instances/SOP or NAME:STUDY/SERIES/SOP"
    )


def fetch_instance(text: str, args: argparse.Namespace) -> str:
    """Retrieve one remote instance into the private cache; returns the cached file's path.

    Raises:
        ArchiveError: any failure, as one line.
    """
    from tui_dicom.core.archive.connect import open_client
    from tui_dicom.core.archive.diskcache import DiskCache
    from tui_dicom.core.archive.errors import NotFound

    base, study, series, sop = split_instance(text)
    address = address_from(base, args)
    cache = DiskCache(address.display, max(16, getattr(args, "disk_cache_mb", 2048)) * 1024 * 1024)
    path = cache.path_for(study, series, sop)
    if cache.has(path):
        return str(path)
    client = open_client(address, timeout=getattr(args, "timeout", 30.0))
    try:
        expected = client.find_instances(study, series)
        expected = [r for r in expected if r.sop_instance_uid == sop]
        if not expected:
            raise NotFound(f"no instance {sop} in series {series} of study {study} at {address.display}")
        cache.pin(study, series)
        got = [item.path for item in client.retrieve(study, series, cache, expected, sop_uid=sop)]
    finally:
        client.close()
    if not got:
        raise NotFound(f"{address.display} sent nothing for instance {sop}")
    return str(got[0])

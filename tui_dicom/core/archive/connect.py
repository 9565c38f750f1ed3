"""One entry point: an address (and options) in, an :class:`~.query.ArchiveClient` out."""

from __future__ import annotations

from tui_dicom.core.archive.address import ArchiveAddress, credentials
from tui_dicom.core.archive.errors import ArchiveError
from tui_dicom.core.archive.query import ArchiveClient

MISSING = "archive support needs pynetdicom and dicomweb-client: pip install 'tui-dicom[archive]'"


def open_client(address: ArchiveAddress, timeout: float = 30.0) -> ArchiveClient:
    """A DIMSE or DICOMweb client for ``address`` (nothing is sent yet).

    Raises:
        ArchiveError: the extra's packages are not installed.
        AddressError: credentials in a config file others can read.
    """
    try:
        if address.kind == "dimse":
            from tui_dicom.core.archive.dimse import DimseClient

            return DimseClient(address, timeout=timeout)
        from tui_dicom.core.archive.dicomweb import DicomWebClient

        return DicomWebClient(address, credentials(address), timeout=timeout)
    except ImportError as exc:
        raise ArchiveError(MISSING) from exc

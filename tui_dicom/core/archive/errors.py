"""Archive failures, each a one-line message a user can act on (never a password, never a traceback)."""

from __future__ import annotations

from tui_dicom.core.errors import DicomViewerError


class ArchiveError(DicomViewerError):
    """An archive operation failed; ``str(err)`` is the one line to show."""


class AddressError(ArchiveError):
    """The archive address or its configuration is not usable (a usage error)."""


class ConnectionFailed(ArchiveError):
    """The archive could not be reached: refused, unreachable, name unknown, timed out, TLS failure."""


class AssociationRejected(ArchiveError):
    """The DICOM archive rejected the association (e.g. an unknown called AE title)."""


class AuthenticationFailed(ArchiveError):
    """HTTP 401/403: the credentials were refused or missing."""


class NotFound(ArchiveError):
    """HTTP 404 or an empty answer where something was asked for by UID."""


class RetrieveUnsupported(ArchiveError):
    """The archive does not offer the chosen retrieve service (e.g. no C-GET: use C-MOVE)."""


class MoveDestinationUnknown(ArchiveError):
    """The archive does not know the C-MOVE destination AE title."""


class RetrieveIncomplete(ArchiveError):
    """A retrieve stopped before every instance arrived; what arrived is kept.

    Attributes:
        received: SOP Instance UIDs that arrived (their files are kept).
        failed: SOP Instance UIDs expected but not received (empty when the expected set is unknown).
    """

    def __init__(self, reason: str, received: list[str], failed: list[str]) -> None:
        self.reason = reason
        self.received = list(dict.fromkeys(received))  # an instance sent twice is one file, counted once
        self.failed = list(failed)
        missing = f"{len(failed)} missing" if failed else "the rest missing"
        super().__init__(f"retrieve incomplete: {reason}; {len(self.received)} instances kept, {missing}")


class Cancelled(ArchiveError):
    """The user cancelled the operation (what arrived is kept)."""

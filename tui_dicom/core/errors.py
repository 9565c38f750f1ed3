"""Error types that carry a plain-language reason for the user."""

from __future__ import annotations


class DicomViewerError(Exception):
    """Base class: ``str(err)`` is a one-line reason fit to show a user."""

    @property
    def reason(self) -> str:
        """The reason without the file name, for a caller that names the file itself."""
        given = self.__dict__.get("_reason")
        return given if isinstance(given, str) else (str(self) or type(self).__name__)

    @reason.setter
    def reason(self, value: str) -> None:
        """A subclass may store its own bare reason (e.g. the archive's ``RetrieveIncomplete``)."""
        self.__dict__["_reason"] = value


class NotDicomError(DicomViewerError):
    """The file is not DICOM (no preamble/``DICM`` and no plausible raw dataset)."""


class HeaderError(DicomViewerError):
    """The file looks like DICOM but its header cannot be read."""


class PixelDataError(DicomViewerError):
    """The pixel data cannot be decoded or does not match its header."""


class UnsupportedTransferSyntax(PixelDataError):
    """No installed decoder handles the transfer syntax; the message says what to install."""


class RefusedPath(DicomViewerError):
    """A path that points outside the allowed root (``..``, absolute, ...) and is never opened."""

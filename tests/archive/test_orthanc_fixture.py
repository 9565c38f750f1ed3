"""The test archive itself: Orthanc runs unprivileged, demands its password, stores what we upload."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pydicom
import pytest
from conftest import PYDICOM_FILES
from orthanc import OrthancServer


def test_orthanc_runs_unprivileged_with_auth_and_stores_uploads(orthanc: OrthancServer) -> None:
    status = os.stat(f"/proc/{orthanc.pid}")
    assert status.st_uid != 0, "Orthanc must not run as root"
    system = orthanc.rest("GET", "/system")
    assert system["DicomAet"] == orthanc.aet and system["DicomPort"] == orthanc.dicom_port
    assert "dicom-web" in orthanc.rest("GET", "/plugins") and "gdcm" in orthanc.rest("GET", "/plugins")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(orthanc.url + "/system", timeout=10)
    assert err.value.code == 401
    path = PYDICOM_FILES / "CT_small.dcm"
    answer = orthanc.upload(path)
    tags = orthanc.rest("GET", f"/instances/{answer['ID']}/simplified-tags")
    assert tags["SOPInstanceUID"] == pydicom.dcmread(path).SOPInstanceUID
    assert orthanc.rest("GET", f"/instances/{answer['ID']}/file") == path.read_bytes()

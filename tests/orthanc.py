"""A real Orthanc archive for tests: Debian's ``/usr/sbin/Orthanc`` on free loopback ports.

Why a real one: the archive client must work against an implementation nobody here wrote, with its
quirks (Orthanc 1.10.1 does not URL-decode QIDO query strings; frames need explicit media types; a C-MOVE
to an unknown AET answers 0xC000). Mocks would only repeat our own assumptions.

Start one with :meth:`OrthancServer.start` (the session fixture ``orthanc`` in ``conftest.py`` does,
once per test session) and stop it with :meth:`OrthancServer.stop` (SIGTERM to its PID, SIGKILL after a
grace period). Each server gets its own temporary folder (JSON config, storage, index, log) owned by the
unprivileged user it runs as (``nobody`` through ``setpriv`` when the tests run as root; otherwise the
current user, who is unprivileged already).

API of a started :class:`OrthancServer` (all attributes are plain values):

- ``url``: the HTTP root, ``http://127.0.0.1:HTTP_PORT`` (no trailing slash).
- ``dicomweb_url``: ``url + "/dicom-web"`` (QIDO-RS / WADO-RS / STOW-RS root).
- ``http_port``, ``dicom_port``: the free loopback ports it listens on.
- ``aet``: its own AE title (``ORTHANC``); the called AET is checked (``DicomCheckCalledAet``), so an
  association to any other title is rejected.
- ``user``, ``password``: HTTP basic-auth credentials (authentication is on for every HTTP request).
- ``scp_aet``, ``scp_port``: the modality registered for C-MOVE (``TUIDICOM`` at 127.0.0.1 on a free
  port chosen at start, nothing listens there until a test starts its Storage SCP on it); more with
  :meth:`add_modality`.
- ``pid``, ``root`` (temporary folder), ``log`` (Orthanc's stdout/stderr file).
- ``upload(path) -> dict``: ``POST /instances`` with the file's bytes (any transfer syntax); returns
  Orthanc's answer (``ID``, ``ParentSeries``, ``ParentStudy``, ``Status``...).
- ``rest(method, path, body=None) -> Any``: any REST call with the credentials; a ``dict``/``list`` body
  is sent as JSON, ``bytes`` as is; the answer is decoded JSON when it is JSON, else bytes. Raises
  ``urllib.error.HTTPError`` on an HTTP error status.
- ``add_modality(name, aet, host, port)``: ``PUT /modalities/NAME`` at run time.
- ``stop()`` / ``kill()``: SIGTERM (waits for exit) / SIGKILL (to fail a retrieve half way).

C-ECHO, C-FIND, C-GET, C-MOVE and C-STORE are allowed from any calling AET; HTTP access is allowed
from loopback only (``RemoteAccessAllowed: false``; Orthanc has no bind-address option). The DICOMweb
and GDCM plugins come from ``/usr/share/orthanc/plugins/`` (GDCM is what decodes JPEG 2000).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ORTHANC = Path("/usr/sbin/Orthanc")
PLUGINS = Path("/usr/share/orthanc/plugins")
PLUGIN_NAMES = ("libOrthancDicomWeb.so", "libOrthancGdcm.so")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel's choice; a race is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> str | None:
    """None when Orthanc can run here, else the reason it cannot (for ``pytest.skip``)."""
    if not ORTHANC.is_file():
        return f"{ORTHANC} not installed (Debian packages orthanc orthanc-dicomweb orthanc-gdcm)"
    missing = [n for n in PLUGIN_NAMES if not (PLUGINS / n).is_file()]
    if missing:
        return f"Orthanc plugins missing in {PLUGINS}: {', '.join(missing)} (orthanc-dicomweb, orthanc-gdcm)"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "running as root without setpriv to drop to an unprivileged user"
    return None


class OrthancServer:
    """One running Orthanc process with its own config and storage (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        http_port: int,
        dicom_port: int,
        scp_port: int,
        proc: subprocess.Popen[bytes],
        user: str,
        password: str,
    ) -> None:
        self.root = root
        self.http_port = http_port
        self.dicom_port = dicom_port
        self.scp_port = scp_port
        self.scp_aet = "TUIDICOM"
        self.aet = "ORTHANC"
        self.user = user
        self.password = password
        self.proc = proc
        self.pid = proc.pid
        self.log = root / "orthanc.log"
        self.url = f"http://127.0.0.1:{http_port}"
        self.dicomweb_url = f"{self.url}/dicom-web"

    # -- life cycle -------------------------------------------------------------------------------

    @classmethod
    def start(
        cls, *, timeout: float = 30.0, user: str = "alice", password: str = "s3cret-pw"
    ) -> OrthancServer:
        """Write a config, start Orthanc as an unprivileged user and wait until ``GET /system`` answers.

        Raises:
            RuntimeError: Orthanc exited or did not answer within ``timeout`` (its log is quoted).
        """
        reason = available()
        if reason:
            raise RuntimeError(reason)
        root = Path(tempfile.mkdtemp(prefix="tui-dicom-orthanc-"))
        http_port, dicom_port, scp_port = free_port(), free_port(), free_port()
        while len({http_port, dicom_port, scp_port}) < 3:
            dicom_port, scp_port = free_port(), free_port()
        (root / "storage").mkdir()
        config = {
            "Name": "tui-dicom-test",
            "StorageDirectory": str(root / "storage"),
            "IndexDirectory": str(root / "storage"),
            "HttpPort": http_port,
            "DicomPort": dicom_port,
            "DicomAet": "ORTHANC",
            "DicomCheckCalledAet": True,
            "DicomCheckModalityHost": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "DicomAlwaysAllowStore": True,
            "DicomModalities": {"tuidicom": ["TUIDICOM", "127.0.0.1", scp_port]},
            "DicomScpTimeout": 30,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {user: password},
            "HttpServerEnabled": True,
            "SslEnabled": False,
            "UnknownSopClassAccepted": True,
            "SaveJobs": False,
            "StableAge": 1,
            "LimitFindResults": 0,
            "LimitFindInstances": 0,
            "Plugins": [str(PLUGINS / n) for n in PLUGIN_NAMES],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False},
            "Gdcm": {"Enable": True},
        }
        cfg = root / "orthanc.json"
        cfg.write_text(json.dumps(config, indent=2))
        cmd = [str(ORTHANC), str(cfg)]
        if os.geteuid() == 0:
            # Orthanc must not run as root: drop to nobody, who owns only this temporary folder.
            import pwd

            nobody = pwd.getpwnam("nobody")
            for path in (root, root / "storage", cfg):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            cmd = [
                "setpriv",
                f"--reuid={nobody.pw_uid}",
                f"--regid={nobody.pw_gid}",
                "--clear-groups",
                "--",
                *cmd,
            ]
        root.chmod(0o700)
        log = open(root / "orthanc.log", "wb")  # noqa: SIM115 - the child keeps writing to it
        try:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root
            )
        finally:
            log.close()
        server = cls(root, http_port, dicom_port, scp_port, proc, user, password)
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout: float) -> None:
        """Poll ``GET /system`` until it answers (Orthanc is ready in ~0.6 s here)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.proc.returncode}:\n{self._log_tail()}")
            try:
                self.rest("GET", "/system")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not answer within {timeout} s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def running(self) -> bool:
        """True while the Orthanc process is alive."""
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL by PID: the archive disappears mid-operation (no clean shutdown)."""
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM by PID (Orthanc needs ~3 s to exit), SIGKILL after ``grace``; remove the folder."""
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- REST ---------------------------------------------------------------------------------------

    def rest(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """One REST call with basic auth; JSON answers are decoded, others returned as bytes."""
        data: bytes | None = None
        headers = {
            "Authorization": "Basic "
            + base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")
        }
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
            headers["Content-Type"] = "application/dicom"
        elif isinstance(body, str):
            data = body.encode()
            headers["Content-Type"] = "text/plain"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            if "json" in resp.headers.get("Content-Type", ""):
                return json.loads(raw)
            return raw

    def upload(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """``POST /instances`` with the file's bytes; returns Orthanc's answer (``ID``, ``ParentStudy``...)."""
        answer = self.rest("POST", "/instances", Path(path).read_bytes())
        if not isinstance(answer, dict):
            raise RuntimeError(f"unexpected answer uploading {path}: {answer!r}")
        return answer

    def add_modality(self, name: str, aet: str, host: str, port: int) -> None:
        """Register a C-MOVE destination at run time (``PUT /modalities/NAME``)."""
        self.rest("PUT", f"/modalities/{name}", {"AET": aet, "Host": host, "Port": port})

    def __repr__(self) -> str:
        return f"OrthancServer(url={self.url!r}, dicom_port={self.dicom_port}, pid={self.pid})"

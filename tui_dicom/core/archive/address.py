"""Archive addresses, named archives from the config file, and credentials.

Addresses a user types:

- ``dicom://CALLED_AET@HOST:PORT`` — a DIMSE archive (C-FIND, C-GET or C-MOVE). The calling AET is
  ``--aet`` (default ``TUIDICOM``).
- ``http://[USER@]HOST[:PORT]/PATH`` or ``https://...`` — a DICOMweb service root (QIDO-RS, WADO-RS).
- ``NAME:`` (or ``NAME``, when the name is in the config file) — a named archive from
  ``$XDG_CONFIG_HOME/tui-dicom/config.toml`` (``~/.config/tui-dicom/config.toml``)::

      [archives.pacs]
      url = "dicom://PACS@pacs.example.org:104"
      aet = "MYSTATION"      # calling AE title (optional)
      retrieve = "move"      # or "get" (default)
      move_port = 11113      # local Storage SCP port for C-MOVE

      [archives.web]
      url = "https://dicom.example.org/dicom-web"
      user = "alice"
      password = "..."       # allowed only when the file is private (mode 0600)
      ca_bundle = "/etc/ssl/private-ca.pem"

Secrets never come from the command line (a process's arguments are visible to every user of the
machine and land in shell history): a password from ``TUI_DICOM_PASSWORD``, then ``~/.netrc``, then the
config file; a bearer token from ``TUI_DICOM_TOKEN`` or the config. A ``user:password@`` in a URL is
refused. :class:`Credentials` never shows its secret in ``repr`` and nothing here logs it.
"""

from __future__ import annotations

import netrc
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from tui_dicom.core.archive.errors import AddressError

DEFAULT_CALLING_AET = "TUIDICOM"
PASSWORD_ENV = "TUI_DICOM_PASSWORD"
TOKEN_ENV = "TUI_DICOM_TOKEN"
_AET_RE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE: 16 chars, no backslash or control

RetrieveMethod = Literal["get", "move"]


@dataclass(frozen=True)
class Credentials:
    """HTTP credentials; the secret never appears in ``repr`` or ``str``."""

    user: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    #: where the secret came from, for messages ("TUI_DICOM_PASSWORD", "~/.netrc", "config", "")
    source: str = ""

    def __bool__(self) -> bool:
        return bool(self.password or self.token)


@dataclass(frozen=True)
class ArchiveAddress:
    """Where an archive is and how to talk to it.

    Attributes:
        kind: ``"dimse"`` or ``"dicomweb"``.
        display: The address as shown to the user (no secret in it).
        host, port: Network location.
        called_aet: The archive's AE title (DIMSE).
        calling_aet: Our AE title (DIMSE), also the C-MOVE destination.
        url: Service root without user info (DICOMweb).
        user: User name from the URL or the config (DICOMweb).
        retrieve: ``"get"`` (C-GET on our association) or ``"move"`` (C-MOVE to our Storage SCP).
        move_port: Port of the local Storage SCP for C-MOVE.
        verify_tls: Verify HTTPS certificates (always on unless the config says ``verify_tls = false``).
        ca_bundle: A CA file to verify with instead of the system's.
        config: The named archive's table from the config file, if any.
    """

    kind: Literal["dimse", "dicomweb"]
    display: str
    host: str
    port: int
    called_aet: str = ""
    calling_aet: str = DEFAULT_CALLING_AET
    url: str = ""
    user: str = ""
    retrieve: RetrieveMethod = "get"
    move_port: int = 11113
    verify_tls: bool = True
    ca_bundle: str = ""
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/tui-dicom/config.toml`` (``~/.config`` when the variable is unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "tui-dicom" / "config.toml"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The config file as a dict (empty when absent).

    Raises:
        AddressError: the file exists but is not valid TOML.
    """
    path = path or config_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AddressError(f"cannot read the config file {path}: {exc.strerror or exc}") from exc
    # imported here: a URL needs no config file, and ``tui-dicom get`` starts faster without it
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        loaded: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
        return loaded
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AddressError(f"the config file {path} is not valid TOML: {exc}") from exc


def looks_like_address(text: str) -> bool:
    """True for ``dicom://``, ``http(s)://`` and ``NAME:`` (a named archive), not for a path."""
    if re.match(r"^(dicom|https?)://", text, re.IGNORECASE):
        return True
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*:", text))


def _check_aet(aet: str, what: str) -> str:
    aet = aet.strip()
    if not _AET_RE.match(aet):
        raise AddressError(f"{what} must be 1-16 printable ASCII characters without a backslash")
    return aet


def _port(value: Any, what: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise AddressError(f"{what} is not a port number") from None
    if not 0 < port < 65536:
        raise AddressError(f"{what} {port} is not between 1 and 65535")
    return port


def parse_address(
    text: str,
    *,
    calling_aet: str | None = None,
    retrieve: str | None = None,
    move_port: int | None = None,
    config: dict[str, Any] | None = None,
) -> ArchiveAddress:
    """Parse what the user typed (a URL or ``NAME:``) into an :class:`ArchiveAddress`.

    Command-line options (``calling_aet``, ``retrieve``, ``move_port``) win over the config file.

    Raises:
        AddressError: unknown name, bad URL, a password in the URL, a bad AE title or port.
    """
    named: dict[str, Any] = {}
    name = ""
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        name = text[:-1] if text.endswith(":") else text
        archives = (config if config is not None else load_config()).get("archives", {})
        if not isinstance(archives, dict) or not isinstance(archives.get(name), dict):
            known = ", ".join(sorted(archives)) if isinstance(archives, dict) and archives else "none"
            raise AddressError(f"no archive named {name!r} in {config_path()} (known: {known})")
        named = dict(archives[name])
        if not isinstance(named.get("url"), str):
            raise AddressError(f"archive {name!r} in {config_path()} has no url")
        text = named["url"]
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if parts.password is not None:
        raise AddressError(
            "a password in the address is refused (it would be visible to other users and in shell "
            f"history): use {PASSWORD_ENV}, ~/.netrc or the config file"
        )
    method = (retrieve or named.get("retrieve") or "get").lower()
    if method not in ("get", "move"):
        raise AddressError(f"--retrieve must be get or move, not {method!r}")
    calling = _check_aet(calling_aet or named.get("aet") or DEFAULT_CALLING_AET, "the calling AE title")
    mport = _port(move_port if move_port is not None else named.get("move_port", 11113), "--move-port")
    try:
        port_in_url = parts.port
    except ValueError:
        raise AddressError(f"bad port in {text!r}") from None
    host = parts.hostname or ""
    if scheme == "dicom":
        if not host or not parts.username:
            raise AddressError("a DICOM address is dicom://CALLED_AET@HOST:PORT")
        if port_in_url is None:
            raise AddressError("a DICOM address needs a port: dicom://CALLED_AET@HOST:PORT")
        called = _check_aet(parts.username, "the called AE title")
        return ArchiveAddress(
            kind="dimse",
            display=f"dicom://{called}@{host}:{port_in_url}",
            host=host,
            port=port_in_url,
            called_aet=called,
            calling_aet=calling,
            retrieve=method,  # type: ignore[arg-type]
            move_port=mport,
            name=name,
            config=named,
        )
    if scheme in ("http", "https"):
        if not host:
            raise AddressError(f"no host in {text!r}")
        port = port_in_url or (443 if scheme == "https" else 80)
        netloc = host if ":" not in host else f"[{host}]"
        if port_in_url:
            netloc += f":{port_in_url}"
        url = f"{scheme}://{netloc}{parts.path.rstrip('/')}"
        user = parts.username or str(named.get("user", "") or "")
        verify = named.get("verify_tls", True)
        return ArchiveAddress(
            kind="dicomweb",
            display=url if not user else url.replace("://", f"://{user}@", 1),
            host=host,
            port=port,
            url=url,
            user=user,
            calling_aet=calling,
            retrieve=method,  # type: ignore[arg-type]
            move_port=mport,
            verify_tls=bool(verify),
            ca_bundle=str(named.get("ca_bundle", "") or ""),
            name=name,
            config=named,
        )
    raise AddressError(f"unknown address scheme {parts.scheme!r}: use dicom://, http:// or https://")


def _config_is_private(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (mode & (stat.S_IRWXG | stat.S_IRWXO))


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")  # a bearer token goes into a header as is: visible ASCII only


def checked(creds: Credentials) -> Credentials:
    """``creds`` unchanged, or an error naming only where the secret came from.

    A token read with ``$(cat file)`` keeps no newline, but ``export TUI_DICOM_TOKEN="$(printf ...)\r"``,
    a file saved with CRLF or a pasted tab does: sent as is, http.client (or requests) refuses the header
    and its error message repeats the whole header, secret included. Such a secret is refused here, before
    anything is sent, rather than silently trimmed: a trimmed password that still fails would look like a
    wrong password. A control character in a Basic password or user name is refused too (base64 would
    carry it, but it is always a copy mistake and would only earn a 401).

    Raises:
        AddressError: the token holds anything but visible ASCII, or the user or password a control
            character.
    """
    where = creds.source or "the config"
    if creds.token and not _TOKEN_RE.fullmatch(creds.token):
        raise AddressError(
            f"the token from {where} holds a space, control or non-ASCII character (a trailing newline?): "
            "remove it"
        )
    if _CONTROL_RE.search(creds.password) or _CONTROL_RE.search(creds.user):
        kind = "password" if _CONTROL_RE.search(creds.password) else "user name"
        raise AddressError(
            f"the {kind} from {where} holds a control character (a trailing newline?): remove it"
        )
    return creds


def credentials(address: ArchiveAddress, environ: dict[str, str] | None = None) -> Credentials:
    """The credentials for a DICOMweb address: environment, then ``~/.netrc``, then the config file.

    Raises:
        AddressError: the config file holds a secret but others can read it; a secret holds characters
            no header may carry (see :func:`checked`).
    """
    return checked(_credentials(address, environ))


def _credentials(address: ArchiveAddress, environ: dict[str, str] | None) -> Credentials:
    env = os.environ if environ is None else environ
    user = address.user
    token = env.get(TOKEN_ENV, "")
    if token:
        return Credentials(user=user, token=token, source=TOKEN_ENV)
    password = env.get(PASSWORD_ENV, "")
    if password:
        return Credentials(user=user, password=password, source=PASSWORD_ENV)
    netrc_path = Path(env.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc"))
    if netrc_path.is_file():
        try:
            entry = netrc.netrc(str(netrc_path)).authenticators(address.host)
        except (netrc.NetrcParseError, OSError):
            entry = None
        if entry is not None:
            login, _account, secret = entry
            if secret and (not user or not login or login == user):
                return Credentials(user=user or login or "", password=secret, source="~/.netrc")
    secret_keys = [k for k in ("password", "token") if address.config.get(k)]
    if secret_keys:
        if not _config_is_private(config_path()):
            raise AddressError(
                f"{config_path()} holds a {secret_keys[0]} but other users can read it: chmod 600 it"
            )
        return Credentials(
            user=user,
            password=str(address.config.get("password", "") or ""),
            token=str(address.config.get("token", "") or ""),
            source="config",
        )
    return Credentials(user=user)

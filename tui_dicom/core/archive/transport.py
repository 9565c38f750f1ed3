"""HTTP for the DICOMweb requests ``tui-dicom get`` makes, on the standard library (``urllib.request``).

Why not ``requests`` here: importing it (with urllib3, charset-normalizer, idna, certifi) takes ~0.17 s,
close to the whole time ``curl`` needs to fetch a 120-slice series from a local archive, and ``get``
makes two requests (a series query and the retrieve). ``urllib.request`` gives what a DICOMweb client
needs from an HTTP library, all of it the standard library's own code:

- TLS verified by default: :func:`ssl.create_default_context` (the system's CA store, which honours
  ``SSL_CERT_FILE``/``SSL_CERT_DIR``, as ``curl`` does; certifi's bundle where there is none; or the
  archive's ``ca_bundle`` alone), hostname checked; only ``verify_tls = false`` in the config turns it
  off;
- proxies from the environment (``http_proxy``, ``https_proxy``, ``all_proxy``, ``no_proxy``, either
  case, CIDR ranges in ``no_proxy`` too) through :class:`urllib.request.ProxyHandler`, HTTPS through a
  proxy as a ``CONNECT`` tunnel; ``http://`` proxies only (``urllib`` cannot do TLS to the proxy);
- credentials (from :func:`~tui_dicom.core.archive.address.credentials`: environment, ``~/.netrc``,
  config) sent at once as a Basic or Bearer ``Authorization`` header, carried over a redirect only to
  the same origin (:func:`same_origin`: another host must not receive the password), and the proxy's
  password never (urllib would copy it onto the redirected request);
- a connect timeout and a separate, longer read timeout (an archive may think before it answers);
- redirects followed; errors raised as ``urllib.error``/``OSError`` exceptions, which
  :func:`failure_kind` sorts into the few cases a user can act on.

Bodies are read with :meth:`http.client.HTTPResponse.read1`: one ``recv`` of up to a megabyte, so a
fast local archive is read in few system calls and a slow one still hands over each piece as it
comes. The viewer's study and instance queries still go through dicomweb-client (built on
``requests``): that process imports the pixel stack anyway.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import http.client
import ipaddress
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tui_dicom.core.archive.address import ArchiveAddress, Credentials
from tui_dicom.core.archive.errors import AddressError, ConnectionFailed

USER_AGENT = "tui-dicom"


class _ReadTimeout:
    """Mixed into an http.client connection: takes ``read_timeout`` and sets it on the socket once the
    connection (TCP, proxy tunnel, TLS) is made; the connect timeout stays the constructor's."""

    sock: Any

    def __init__(self, *args: Any, read_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]  # the http.client connection class mixed with this one
        if self.sock is not None and self.read_timeout is not None:
            self.sock.settimeout(self.read_timeout)


class _HTTPConnection(_ReadTimeout, http.client.HTTPConnection):
    """Plain HTTP with a read timeout."""


class _HTTPSConnection(_ReadTimeout, http.client.HTTPSConnection):
    """HTTPS with a read timeout."""


def tls_context(address: ArchiveAddress) -> ssl.SSLContext:
    """The TLS context for ``address``: verified against the system's CAs or the configured bundle.

    Raises:
        AddressError: the configured ``ca_bundle`` cannot be read.
    """
    try:
        context = ssl.create_default_context(cafile=address.ca_bundle or None)
    except (OSError, ssl.SSLError) as exc:
        raise AddressError(f"cannot read the ca_bundle {address.ca_bundle!r}: {exc}") from None
    defaults = ssl.get_default_verify_paths()
    if not address.ca_bundle and not (defaults.cafile or defaults.capath):
        # no CA store where OpenSSL looks (a python.org build on macOS before its "Install
        # Certificates" step): Mozilla's bundle from certifi, which ``requests`` (installed with the
        # archive extra) verifies with, rather than refusing every archive
        with contextlib.suppress(ImportError, OSError, ssl.SSLError):
            import certifi

            context.load_verify_locations(certifi.where())
    if not address.verify_tls:  # only an explicit verify_tls = false in the config
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def environment_proxies() -> dict[str, str]:
    """Proxies from the environment as ``urllib.request`` reads them, ``all_proxy`` for the schemes
    without their own (as curl and requests use it); ``"no"`` holds ``no_proxy``."""
    proxies = urllib.request.getproxies()
    fallback = proxies.get("all", "")
    for scheme in ("http", "https"):
        if scheme not in proxies and fallback:
            proxies[scheme] = fallback
    return proxies


def proxy_host(proxy_url: str) -> str:
    """``HOST:PORT`` of a proxy URL, without the user or password it may hold (for messages)."""
    parts = urllib.parse.urlsplit(proxy_url if "://" in proxy_url else f"http://{proxy_url}")
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port or _DEFAULT_PORTS.get(parts.scheme, 80)}"


def _cidr_bypass(host: str, no_proxy: str) -> bool:
    """Whether ``host`` (``HOST[:PORT]`` as urllib hands it over) is an IP address inside a CIDR entry of
    ``no_proxy`` (``10.0.0.0/8``): ``requests`` honours these, ``urllib``'s ``proxy_bypass`` does not."""
    try:
        address = ipaddress.ip_address(urllib.parse.urlsplit(f"//{host}").hostname or "")
    except ValueError:
        return False  # a name: urllib's own suffix matching decides
    for entry in no_proxy.split(","):
        entry = entry.strip()
        if "/" not in entry:
            continue
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def proxy_for(url: str) -> str:
    """``HOST:PORT`` of the proxy a request to ``url`` goes through (from the environment), "" when it
    goes direct (no proxy for its scheme, or ``no_proxy`` names its host, by suffix or CIDR range)."""
    parts = urllib.parse.urlsplit(url)
    proxies = environment_proxies()
    proxy = proxies.get(parts.scheme, "")
    host = parts.netloc.rpartition("@")[2]
    if not proxy or urllib.request.proxy_bypass(host) or _cidr_bypass(host, proxies.get("no", "")):
        return ""
    return proxy_host(proxy)


class _ProxyHandler(urllib.request.ProxyHandler):
    """urllib's proxy handling, plus: CIDR ranges in ``no_proxy``; the proxy used recorded on the
    transport (a failure to reach it is the proxy's, not the archive's); and only ``http://`` proxies.

    ``urllib`` speaks to an ``https://`` proxy in clear text (the ``CONNECT`` line and the proxy's
    password unencrypted), and not at all to a ``socks5://`` one: both are refused, in one line, when
    a request would go through them.
    """

    def __init__(self, proxies: dict[str, str], transport: Transport) -> None:
        self._no_proxy = proxies.get("no", "")
        super().__init__({k: v for k, v in proxies.items() if k in ("http", "https")})
        self._transport = transport

    def proxy_open(self, req: urllib.request.Request, proxy: str, type: str) -> Any:  # noqa: A002
        if req.host and (urllib.request.proxy_bypass(req.host) or _cidr_bypass(req.host, self._no_proxy)):
            return None
        if "://" in proxy and not proxy.lower().startswith("http://"):
            proxy_scheme = proxy.split("://", 1)[0]
            raise ConnectionFailed(
                f"the {type} proxy from the environment is a {proxy_scheme}:// proxy; only http:// "
                "proxies are supported (an https:// proxy would be spoken to unencrypted)"
            )
        self._transport.proxy = proxy_host(proxy)
        return super().proxy_open(req, proxy, type)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(old: str, new: str) -> bool:
    """Whether a redirect from ``old`` to ``new`` may carry the credentials: the same host, and the same
    scheme and port or an upgrade from http to https on the default ports (the rule ``requests``
    follows); any other host, port or a downgrade to http gets none."""
    a, b = urllib.parse.urlsplit(old), urllib.parse.urlsplit(new)
    if (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    a_port = a.port or _DEFAULT_PORTS.get(a.scheme)
    b_port = b.port or _DEFAULT_PORTS.get(b.scheme)
    if a.scheme == b.scheme:
        return a_port == b_port
    return (a.scheme, a_port, b.scheme, b_port) == ("http", 80, "https", 443)


class Transport:
    """GET requests to one DICOMweb archive (a fresh connection per request, as ``urllib`` makes them)."""

    def __init__(
        self, address: ArchiveAddress, creds: Credentials, connect_timeout: float, read_timeout: float
    ) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._authorization = ""
        if creds.token:
            self._authorization = f"Bearer {creds.token}"
        elif creds.password:
            pair = f"{creds.user}:{creds.password}".encode()
            self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        self._opener: urllib.request.OpenerDirector | None = None
        #: ``HOST:PORT`` of the proxy the last request went through ("" when direct)
        self.proxy = ""

    def _build_opener(self) -> urllib.request.OpenerDirector:
        transport = self
        context: list[ssl.SSLContext] = []

        class HTTPHandler(urllib.request.HTTPHandler):
            def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
                return self.do_open(_HTTPConnection, req, read_timeout=transport.read_timeout)

        class RedirectHandler(urllib.request.HTTPRedirectHandler):
            def redirect_request(
                self,
                req: urllib.request.Request,
                fp: Any,
                code: int,
                msg: str,
                headers: Any,
                newurl: str,
            ) -> urllib.request.Request | None:
                new = super().redirect_request(req, fp, code, msg, headers, newurl)
                if new is not None:
                    # ProxyHandler adds the proxy's password as an ordinary header, which the base class
                    # copies: a target reached without the proxy (no_proxy) would receive it. The
                    # ProxyHandler adds it again if the new request goes through the proxy.
                    new.headers.pop("Proxy-authorization", None)
                if new is not None and transport._authorization and same_origin(req.full_url, new.full_url):
                    new.add_unredirected_header("Authorization", transport._authorization)
                return new

        class HTTPSHandler(urllib.request.HTTPSHandler):
            def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
                if not context:  # made on first use: loading the CA store costs milliseconds
                    context.append(tls_context(transport.address))
                return self.do_open(
                    _HTTPSConnection, req, context=context[0], read_timeout=transport.read_timeout
                )

        # only what a DICOMweb GET needs (no ftp:, file: or data: handlers a redirect could reach)
        opener = urllib.request.OpenerDirector()
        for handler in (
            _ProxyHandler(environment_proxies(), transport),
            HTTPHandler(),
            HTTPSHandler(),
            urllib.request.HTTPDefaultErrorHandler(),
            RedirectHandler(),
            urllib.request.HTTPErrorProcessor(),
        ):
            opener.add_handler(handler)
        opener.addheaders = [("User-Agent", USER_AGENT)]
        return opener

    def get(self, url: str, accept: str) -> http.client.HTTPResponse:
        """Send ``GET url`` and return the response, its body not read yet (close it when done).

        Raises:
            urllib.error.HTTPError: an error status (4xx, 5xx); urllib.error.URLError, OSError: the
                request did not get an answer (see :func:`failure_kind`); ConnectionFailed: a proxy
                scheme that cannot be used; AddressError: an unreadable ``ca_bundle``.
        """
        self.proxy = ""
        if self._opener is None:
            self._opener = self._build_opener()
        request = urllib.request.Request(url, headers={"Accept": accept})
        if self._authorization:
            request.add_unredirected_header("Authorization", self._authorization)
        try:
            response: http.client.HTTPResponse = self._opener.open(request, timeout=self.connect_timeout)
        except urllib.error.HTTPError as exc:
            exc.close()  # its body (an error page) is not read: free the connection now
            raise
        return response


#: how http.client reports a proxy's refusal of a ``CONNECT`` (followed by the status and reason)
_TUNNEL_FAILED = "Tunnel connection failed:"


def failure_kind(exc: BaseException) -> tuple[str, str]:
    """Sort an exception from :meth:`Transport.get` or from reading a body into ``(kind, detail)``.

    Kinds: ``"http"`` (detail: ``"CODE REASON"``), ``"redirect"`` (a redirect loop or too many), ``"tls"`` (detail: why verification failed),
    ``"refused"``, ``"resolve"``, ``"unreachable"``, ``"connect-timeout"``, ``"timeout"`` (no data
    within the read timeout), ``"lost"`` (the connection broke), ``"proxy-http"`` (the proxy answered
    a ``CONNECT`` with an error; detail: ``"CODE REASON"``), ``"header"`` (a header value HTTP does
    not allow; the exception's text holds the value, so it must not be shown), ``""`` (none of these).
    """
    if isinstance(exc, urllib.error.HTTPError):
        if 300 <= exc.code < 400:  # urllib gave up following (a loop, or too many): its reason is 3 lines
            return "redirect", ""
        return "http", " ".join(f"{exc.code} {exc.reason or ''}".split())
    if isinstance(exc, ValueError) and "header" in str(exc).lower():
        # http.client's "Invalid header value b'Bearer ...'" repeats the secret: only the kind is kept
        return "header", ""
    connecting = isinstance(exc, urllib.error.URLError)
    reason: BaseException = exc
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        reason = exc.reason
    if isinstance(reason, ssl.SSLCertVerificationError):
        return "tls", str(reason.verify_message or reason.reason or "the certificate could not be verified")
    if isinstance(reason, ssl.SSLError):
        return "tls", str(reason.reason or reason)
    if isinstance(reason, OSError) and not reason.errno and str(reason).startswith(_TUNNEL_FAILED):
        return "proxy-http", str(reason)[len(_TUNNEL_FAILED) :].strip()  # the proxy refused CONNECT
    if isinstance(reason, ConnectionRefusedError):
        return "refused", ""
    if isinstance(reason, socket.gaierror):
        return "resolve", ""
    if isinstance(reason, TimeoutError):
        return ("connect-timeout" if connecting else "timeout"), ""
    if isinstance(reason, OSError) and reason.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable", ""
    if isinstance(reason, (http.client.HTTPException, OSError)):
        return "lost", ""
    return "", ""

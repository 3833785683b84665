"""Connecting to a vCenter with pyVmomi: TLS verification on by default, typed errors that never carry secrets."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

from defusedxml import ElementTree
from pyVim.connect import Connect, Disconnect
from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import GetServiceVersions, versionIdMap

from inventory.vsphere.checks import ca_file_reason, sdk_url_problem


class VCenterError(Exception):
    """A failure talking to a vCenter. ``retryable`` tells the task whether backing off and retrying can help."""

    retryable = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class VCenterConnectError(VCenterError):
    pass


class VCenterTimeoutError(VCenterError):
    pass


class VCenterAuthError(VCenterError):
    retryable = False


class VCenterTlsError(VCenterError):
    retryable = False


class VCenterRetrievalError(VCenterError):
    """A fault or a dropped connection in the middle of collecting: nothing collected so far is used."""


class VCenterConfigError(VCenterError):
    retryable = False


@dataclass(frozen=True)
class Endpoint:
    url: str
    username: str
    password: str
    verify_tls: bool = True
    ca_file: str = ""
    timeout: float = 30.0

    def __repr__(self) -> str:  # never print the password
        return f"Endpoint(url={self.url!r}, username={self.username!r}, verify_tls={self.verify_tls})"

    @property
    def host_port(self) -> tuple[str, int]:
        # Rows stored before URLs were checked (http://, ...) fail here with the reason, not in the TLS handshake.
        if problem := sdk_url_problem(self.url):
            raise VCenterConfigError(f"url: {problem}")
        parts = urlsplit(self.url)
        return parts.hostname, parts.port or 443

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/sdk"


def ssl_context(endpoint: Endpoint) -> ssl.SSLContext:
    if not endpoint.verify_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=endpoint.ca_file or None)
    except (OSError, ValueError) as exc:
        raise VCenterConfigError(f"ca_file: {ca_file_reason(endpoint.ca_file, exc)}") from None


def translate_error(exc: BaseException, endpoint: Endpoint) -> VCenterError:
    """Map pyVmomi, socket and TLS failures to readable, secret-free errors."""
    where = endpoint.url
    if isinstance(exc, VCenterError):
        return exc
    if isinstance(exc, vim.fault.InvalidLogin):
        return VCenterAuthError(f"{where}: vCenter rejected the login of user {endpoint.username!r} (wrong password?)")
    if isinstance(exc, vim.fault.NoPermission):
        return VCenterAuthError(f"{where}: user {endpoint.username!r} lacks a privilege needed to read the inventory")
    if isinstance(exc, vim.fault.NotAuthenticated):
        return VCenterRetrievalError(f"{where}: the vCenter session ended during the sync (not authenticated)")
    if isinstance(exc, ssl.SSLCertVerificationError):
        if endpoint.ca_file:  # most often a vCenter whose certificate was renewed or replaced since
            advice = (
                f"the certificate is not signed by the CA in {endpoint.ca_file}: if the vCenter's certificate "
                "was replaced, set a CA file with its new CA"
            )
        else:
            advice = "install the vCenter CA, set a CA file, or turn TLS verification off for this vCenter"
        return VCenterTlsError(f"{where}: TLS certificate verification failed ({exc.verify_message}); {advice}")
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        # The peer closed the connection inside TLS (a vCenter going down or restarting, a proxy dropping it): a
        # dropped connection a retry can cure, not a certificate or protocol problem.
        reason = getattr(exc, "reason", None) or type(exc).__name__
        return VCenterRetrievalError(f"{where}: the connection dropped during TLS ({reason})")
    if isinstance(exc, ssl.SSLError):
        return VCenterTlsError(f"{where}: TLS handshake failed ({getattr(exc, 'reason', None) or exc})")
    if isinstance(exc, socket.timeout | TimeoutError):
        return VCenterTimeoutError(f"{where}: timed out after {endpoint.timeout:g} s")
    if isinstance(exc, ConnectionRefusedError):
        return VCenterConnectError(f"{where}: connection refused (is the vCenter up and the port right?)")
    if isinstance(exc, socket.gaierror):
        return VCenterConnectError(f"{where}: cannot resolve the host name ({exc.strerror})")
    if isinstance(exc, http.client.HTTPException | ConnectionError | EOFError):
        return VCenterRetrievalError(f"{where}: the connection dropped during the sync ({type(exc).__name__})")
    if isinstance(exc, OSError):
        return VCenterConnectError(f"{where}: network error ({exc.strerror or type(exc).__name__})")
    if isinstance(exc, vmodl.MethodFault):
        msg = getattr(exc, "msg", "") or type(exc).__name__
        return VCenterRetrievalError(f"{where}: vCenter fault {type(exc).__name__}: {msg}")
    return VCenterRetrievalError(f"{where}: unexpected {type(exc).__name__} during the sync")


def negotiate_version(endpoint: Endpoint, context: ssl.SSLContext) -> str:
    """The newest vim25 version both pyVmomi and the server speak, from ``vimServiceVersions.xml``.

    pyVim's SmartConnect does the same but without any socket timeout, so a vCenter that accepts the
    connection and never answers would hang the sync; this request is bounded by ``endpoint.timeout``.
    """
    host, port = endpoint.host_port
    conn = http.client.HTTPSConnection(host, port, context=context, timeout=endpoint.timeout)
    try:
        conn.request("GET", endpoint.path.rstrip("/") + "/vimServiceVersions.xml")
        response = conn.getresponse()
        body = response.read() if response.status == 200 else b""
    finally:
        conn.close()
    offered: set[str] = set()
    if body:
        try:
            root = ElementTree.fromstring(body)
        except ParseError:
            root = None
        for namespace in root.findall("namespace") if root is not None else ():
            offered.add((namespace.findtext("version") or "").strip())
            offered.update((v.text or "").strip() for v in namespace.findall("priorVersions/version"))
    for version in GetServiceVersions("vim25"):
        if versionIdMap.get(version) in offered:
            return version
    raise VCenterConnectError(f"{endpoint.url}: no vSphere API version in common (is this a vCenter SDK URL?)")


@contextmanager
def connect(endpoint: Endpoint) -> Iterator[vim.ServiceInstance]:
    """Log in, yield the ServiceInstance, always log out."""
    host, port = endpoint.host_port
    context = ssl_context(endpoint)
    try:
        version = negotiate_version(endpoint, context)
        si = Connect(
            host=host,
            port=port,
            user=endpoint.username,
            pwd=endpoint.password,
            path=endpoint.path,
            version=version,
            sslContext=context,
            # A socket timeout per call: a hung vCenter must fail the sync, not block the worker forever.
            httpConnectionTimeout=endpoint.timeout,
            connectionPoolTimeout=int(endpoint.timeout),
        )
    except Exception as exc:  # translated below; the original may embed request details
        raise translate_error(exc, endpoint) from None
    try:
        yield si
    finally:
        try:
            Disconnect(si)
        except Exception:  # noqa: S110 - a failed logout must not mask the sync's own result
            pass


def count_round_trips(si: vim.ServiceInstance) -> list[int]:
    """Count every SOAP call made through this connection; returns a one-element list used as a counter."""
    counter = [0]
    stub = si._stub
    original = stub.InvokeMethod

    def invoke(*args, **kwargs):
        counter[0] += 1
        return original(*args, **kwargs)

    stub.InvokeMethod = invoke
    return counter

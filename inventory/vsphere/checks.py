"""What makes a vCenter endpoint usable before any connection: an https:// SDK URL and a loadable CA bundle.

Pure Python (no pyVmomi), so the model's validators can import it cheaply; the connection applies the same rules.
"""

from __future__ import annotations

import ipaddress
import re
import ssl

SDK_URL_SHAPE = "https://HOST[:PORT]/sdk"
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"  # underscores: some on-prem (AD) names carry them
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?", re.IGNORECASE | re.ASCII)
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*)://", re.IGNORECASE | re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)


def sdk_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a vCenter's SDK endpoint, or None when it can.

    The vSphere SDK is served over HTTPS only. The host may be a single-label name (on-prem vCenters are often
    reached by short names), a dotted name, an IPv4 or a bracketed IPv6 address; a port and a path are optional.
    """
    if not url:
        return f"Enter a URL: {SDK_URL_SHAPE}"
    if any(c.isspace() or not c.isprintable() for c in url):
        return f"Enter a valid URL: it must not contain spaces or control characters ({SDK_URL_SHAPE})"
    scheme = _SCHEME.match(url)
    if scheme is None:
        return "Enter a valid URL: it must start with https://" + _hint(f"https://{url}")
    if scheme.group(1).lower() != "https":
        if scheme.group(1).lower() == "http":
            netloc, slash, path = url[scheme.end() :].partition("/")
            fixed = f"https://{netloc.removesuffix(':80')}{slash}{path}"
            return f"vCenter's API is HTTPS only: use {fixed if sdk_url_problem(fixed) is None else SDK_URL_SHAPE}"
        return f"Enter a valid URL: vCenter's API is HTTPS only, not {scheme.group(1)}:// ({SDK_URL_SHAPE})"
    rest = url[scheme.end() :]
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "?" in rest or "#" in rest:
        return f"Enter a valid URL: an SDK URL has no query (?...) or fragment (#...): {SDK_URL_SHAPE}"
    if "@" in netloc:
        return "Enter a valid URL without a user name or password in it (they have their own fields)"
    return _host_port_problem(netloc)


def _hint(candidate: str) -> str:
    return f" (did you mean {candidate}?)" if sdk_url_problem(candidate) is None else f" ({SDK_URL_SHAPE})"


def _host_port_problem(netloc: str) -> str | None:
    if netloc.startswith("["):
        host, bracket, after = netloc[1:].partition("]")
        if not bracket:
            return f"Enter a valid URL: the IPv6 address in {netloc!r} has no closing ]"
        if not _is_ip(host, ipaddress.IPv6Address):
            return f"Enter a valid URL: [{host}] is not an IPv6 address"
        if after and not after.startswith(":"):
            return f"Enter a valid URL: {netloc!r} is not HOST or HOST:PORT"
        port = after[1:] if after else None
    elif netloc.count(":") > 1:
        example = netloc if _is_ip(netloc, ipaddress.IPv6Address) else "fd00::10"
        return f"Enter a valid URL: an IPv6 address goes in brackets, e.g. https://[{example}]/sdk"
    else:
        host, colon, port_text = netloc.partition(":")
        port = port_text if colon else None
        if not host:
            return f"Enter a valid URL: the host is missing ({SDK_URL_SHAPE})"
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                return f"Enter a valid URL: {host!r} is not a host name"
        if len(host.rstrip(".")) > 253 or not _HOST_NAME.fullmatch(host):
            return f"Enter a valid URL: {host!r} is not a host name or IP address"
        if re.fullmatch(r"[0-9.]+", host) and not _is_ip(host, ipaddress.IPv4Address):
            return f"Enter a valid URL: {host} is not an IPv4 address"
    if port is not None and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        return "Enter a valid URL: the port must be a number from 1 to 65535"
    return None


def _is_ip(text: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def ca_file_problem(path: str) -> str | None:
    """Why the CA bundle at ``path`` cannot verify a vCenter's certificate, or None: loaded as ``ssl_context``
    loads it. The path is read by the process that checks it (the web or CLI process, then the worker)."""
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ValueError) as exc:
        return ca_file_reason(path, exc)
    return None


def ca_file_reason(path: str, exc: OSError | ValueError) -> str:
    """What went wrong loading the CA bundle at ``path``, from the exception ``ssl`` raised."""
    if isinstance(exc, ssl.SSLError):
        return f"{path!r} is not a PEM certificate or bundle" + (f" ({exc.reason})" if exc.reason else "")
    if isinstance(exc, FileNotFoundError):
        return f"{path!r} does not exist"
    if isinstance(exc, IsADirectoryError):
        return f"{path!r} is a directory, not a PEM certificate file"
    if isinstance(exc, PermissionError):
        return f"{path!r} is not readable ({exc.strerror})"
    if isinstance(exc, OSError):
        return f"cannot read {path!r} ({exc.strerror or exc})"
    return f"{path!r} is not a valid file path"  # a NUL byte or an unencodable character

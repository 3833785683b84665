"""What a vCenter endpoint must be before any connection: an https:// SDK URL and a CA file that loads as PEM.

The connection applies the same rules, so a row stored before they existed fails with the reason, not in TLS.
"""

import ssl

import pytest

from inventory.vsphere.checks import ca_file_problem, sdk_url_problem
from inventory.vsphere.connection import Endpoint, VCenterConfigError, ssl_context
from tests.inventory.cafiles import BAD_CA_FILES

ACCEPTED_URLS = [
    "https://vcsa01/sdk",  # a short (single-label) name
    "https://vcsa01",
    "https://VCSA01:8443/sdk",
    "https://vc.example.com/sdk",
    "https://vc-01.corp.example.com:443/sdk",
    "https://vc_01.corp.local/sdk",
    "https://vc.example.com./sdk",
    "https://10.0.0.5/sdk",
    "https://10.0.0.5:8443/sdk",
    "https://[fd00::10]/sdk",
    "https://[fd00::10]:8443/sdk",
    "https://[::1]/sdk",
    "https://bücher.example/sdk",
]


@pytest.mark.parametrize("url", ACCEPTED_URLS)
def test_https_urls_with_any_usable_host_are_accepted(url):
    assert sdk_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://vc.example.com/sdk", "vCenter's API is HTTPS only: use https://vc.example.com/sdk"),
        ("HTTP://vcsa01:80/sdk", "vCenter's API is HTTPS only: use https://vcsa01/sdk"),
        ("http://vcsa01:8080/sdk", "vCenter's API is HTTPS only: use https://vcsa01:8080/sdk"),
        ("http://bad host/sdk", "must not contain spaces"),
        ("ftp://vc.example.com/sdk", "HTTPS only, not ftp://"),
        ("file:///etc/passwd", "HTTPS only, not file://"),
        ("vcsa01/sdk", "must start with https:// (did you mean https://vcsa01/sdk?)"),
        ("", "Enter a URL"),
        ("not a url", "must not contain spaces"),
        ("https://vc.example.com/s dk", "must not contain spaces"),
        (" https://vc.example.com/sdk", "must not contain spaces"),
        ("https://vc\t/sdk", "must not contain spaces"),
        ("https:///sdk", "the host is missing"),
        ("https://:443/sdk", "the host is missing"),
        ("https://vc:port/sdk", "the port must be a number from 1 to 65535"),
        ("https://vc:0/sdk", "the port must be a number from 1 to 65535"),
        ("https://vc:65536/sdk", "the port must be a number from 1 to 65535"),
        ("https://vc:/sdk", "the port must be a number from 1 to 65535"),
        ("https://fd00::10/sdk", "an IPv6 address goes in brackets, e.g. https://[fd00::10]/sdk"),
        ("https://[fd00::zz]/sdk", "is not an IPv6 address"),
        ("https://[fd00::10/sdk", "has no closing ]"),
        ("https://[fd00::10]x/sdk", "is not HOST or HOST:PORT"),
        ("https://999.1.1.1/sdk", "999.1.1.1 is not an IPv4 address"),
        ("https://10.0.0/sdk", "10.0.0 is not an IPv4 address"),
        ("https://-vc/sdk", "'-vc' is not a host name or IP address"),
        ("https://vc..example.com/sdk", "is not a host name or IP address"),
        ("https://vc%41/sdk", "is not a host name or IP address"),
        ("https://user:pw@vc.example.com/sdk", "without a user name or password"),
        ("https://vc.example.com/sdk?x=1", "no query"),
        ("https://vc.example.com/sdk#top", "no query"),
    ],
)
def test_other_urls_are_refused_with_the_reason(url, message):
    problem = sdk_url_problem(url)
    assert problem is not None and message in problem


def test_a_stored_http_url_fails_to_connect_with_the_reason_not_in_the_tls_handshake():
    endpoint = Endpoint(url="http://vc.example.com/sdk", username="u", password="p")
    with pytest.raises(VCenterConfigError) as info:
        endpoint.host_port  # noqa: B018
    assert info.value.message == "url: vCenter's API is HTTPS only: use https://vc.example.com/sdk"


@pytest.mark.parametrize(
    ("url", "host_port"),
    [
        ("https://vcsa01/sdk", ("vcsa01", 443)),
        ("https://VC.example.com:8443/sdk", ("vc.example.com", 8443)),
        ("https://[FD00::10]:8443/sdk", ("fd00::10", 8443)),
    ],
)
def test_the_connection_reads_host_and_port_from_an_accepted_url(url, host_port):
    assert Endpoint(url=url, username="u", password="p").host_port == host_port


def test_a_pem_certificate_loads(ca_files):
    assert ca_file_problem(ca_files["pem"]) is None


@pytest.mark.parametrize(("kind", "message"), BAD_CA_FILES.items())
def test_a_ca_file_that_does_not_load_is_named_with_the_reason(ca_files, kind, message):
    problem = ca_file_problem(ca_files[kind])
    assert problem is not None and message in problem and repr(ca_files[kind]) in problem
    endpoint = Endpoint(url="https://vcsa01/sdk", username="u", password="p", ca_file=ca_files[kind])
    with pytest.raises(VCenterConfigError, match=f"^ca_file: .*{message}"):
        ssl_context(endpoint)


def test_an_unreadable_ca_file_is_named(ca_files, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ssl, "create_default_context", denied)  # root reads any file, whatever its mode
    assert ca_file_problem(ca_files["pem"]) == f"{ca_files['pem']!r} is not readable (Permission denied)"


@pytest.mark.parametrize("path", ["ca\x00.pem", "\ud800.pem", "x" * 5000])
def test_paths_the_os_cannot_open_are_refused_not_raised(path):
    assert ca_file_problem(path)

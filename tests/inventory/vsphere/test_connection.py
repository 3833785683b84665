"""How socket, TLS and vSphere failures read, and whether a retry can help (``connection.translate_error``)."""

import ssl

import pytest

from inventory.vsphere.connection import Endpoint, VCenterRetrievalError, VCenterTlsError, translate_error

ENDPOINT = Endpoint(url="https://vc.example.com/sdk", username="u", password="p")


def test_a_vcenter_dying_inside_tls_is_a_dropped_connection_that_is_retried():
    """CI: a vCenter killed while the sync opened its connection failed as 'TLS handshake failed (EOF occurred in
    violation of protocol)', not retried, like a certificate problem."""
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:2427)")
    error = translate_error(eof, ENDPOINT)
    assert isinstance(error, VCenterRetrievalError) and error.retryable
    assert str(error).startswith("https://vc.example.com/sdk: the connection dropped during TLS (")


@pytest.mark.parametrize(
    "exc", [ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), ssl.SSLError(1, "handshake failure")]
)
def test_other_tls_failures_are_not_retried(exc):
    error = translate_error(exc, ENDPOINT)
    assert isinstance(error, VCenterTlsError) and not error.retryable
    assert "TLS handshake failed" in str(error)


def test_a_refused_connection_is_retried():
    assert translate_error(ConnectionRefusedError(), ENDPOINT).retryable
    assert translate_error(TimeoutError(), ENDPOINT).retryable

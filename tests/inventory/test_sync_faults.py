"""A vCenter that accepts connections and never answers must fail the sync after the timeout."""

import socket
import threading
import time

import pytest

from inventory import services
from inventory.models import SyncStatus


@pytest.fixture
def silent_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)  # never answer
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.getsockname()[1]}/sdk"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.django_db
def test_a_hung_vcenter_times_out_with_a_retryable_error(silent_server, settings):
    settings.VCENTER_CONNECT_TIMEOUT = 2
    vcenter = services.register_vcenter(name="hung", url=silent_server, username="u", password="p", verify_tls=False)
    started = time.monotonic()
    with pytest.raises(services.SyncFailed) as exc:
        services.sync_vcenter(vcenter=vcenter)
    assert time.monotonic() - started < 30
    assert exc.value.run.status == SyncStatus.FAILED
    assert "timed out after 2 s" in exc.value.run.error
    assert exc.value.error.retryable

from shutil import which

import pytest

from tests.conftest import require
from tests.inventory.cafiles import write_ca_files


@pytest.fixture(scope="session")
def ca_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """CA file paths by kind (``tests.inventory.cafiles``): ``pem`` loads, the others are refused."""
    return write_ca_files(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def own_redis():
    """A redis-server of this test on a port of its own (never the shared one), without persistence, killed at the
    end: for tests that stop or restart the broker."""
    from tests.inventory.faults.conftest import OwnRedis, free_port

    require(which("redis-server") is not None, "redis-server is not installed (apt install redis-server)")
    server = OwnRedis(free_port())
    server.start()
    yield server
    server.kill()


@pytest.fixture
def fast_sync_settings(settings):
    """The short sync timeouts, heartbeats and visibility timeout the fault tests run with."""
    from tests.inventory.faults.conftest import FAST

    for key, value in FAST.items():
        setattr(settings, key, value)
    return settings


# The demo lab imported as vCenter "demo", and a viewer's API and page clients (occupancy, NVSwitch and overview tests)
@pytest.fixture
def demo():
    import json

    from inventory import services
    from tests.vcsim import LABS

    vcenter, _ = services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    return vcenter


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(UserFactory(username="viewer-api", role="viewer"))
    return client


@pytest.fixture
def page():
    from django.test import Client

    from tests.factories import UserFactory

    client = Client()
    client.force_login(UserFactory(username="viewer-page", role="viewer"))
    return client

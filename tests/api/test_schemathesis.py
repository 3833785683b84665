"""schemathesis against the app's own /api/schema/: every operation, with an admin's token and the demo lab.

Checks: no 5xx (``not_a_server_error``), every response's status code, content type and body as the schema
documents them. Path and body ids are steered to real objects most of the time (random integers would only
ever reach the 404 branch); the rest keep the generated value, so unknown ids are exercised too. DELETE of a
vCenter is pointed at a disposable vCenter so it does not wipe the lab the later examples read.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inventory.models import Cluster, Gpu, Host, ResourceDomain, SyncRun, VgpuProfile, VirtualMachine
from placement.models import Reservation
from tests import factories
from tests.api.support import load_demo, token_client
from tests.factories import UserFactory

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 15


@pytest.fixture
def lab(db, settings):
    settings.VCENTER_CONNECT_TIMEOUT = 2  # the `test` action and syncs reach nothing real here
    vcenter = load_demo()
    factories.SyncRunFactory(vcenter=vcenter)
    admin = UserFactory(role="admin")
    reserved = token_client(admin).post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": "fixture"}, format="json")
    assert reserved.status_code == 201, reserved.content
    reservation = Reservation.objects.get(pk=reserved.json()["id"])
    ids = {
        "vcenters": [vcenter.pk],
        "clusters": list(Cluster.objects.values_list("pk", flat=True)),
        "hosts": list(Host.objects.values_list("pk", flat=True)),
        "gpus": list(Gpu.objects.values_list("pk", flat=True)),
        "vms": list(VirtualMachine.objects.values_list("pk", flat=True)),
        "vgpu-profiles": list(VgpuProfile.objects.values_list("pk", flat=True)),
        "domains": list(ResourceDomain.objects.values_list("pk", flat=True)),
        "sync-runs": list(SyncRun.objects.values_list("pk", flat=True)),
        "reservations": [reservation.pk],
    }
    token = token_client(admin)._credentials["HTTP_AUTHORIZATION"]
    return {"ids": ids, "headers": {"Authorization": token}, "vcenter": vcenter}


@pytest.fixture
def wsgi_app(db):
    """Django's WSGI application, without closing the test's database connection after each request (as
    Django's test client does: the test runs inside one transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(lab, wsgi_app):
    return schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app, headers=lab["headers"])


schema = schemathesis.pytest.from_fixture("api_schema")


def _steer(value, choices: list[int]):
    """Three generated integers in four become a real id; the rest (and anything not an integer) stay."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and choices and value % 4 != 3:
        return choices[value % len(choices)]
    return value


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api(case, lab):
    resource = case.path.split("/")[2]
    if "id" in (case.path_parameters or {}):
        case.path_parameters["id"] = _steer(case.path_parameters["id"], lab["ids"].get(resource, []))
        if resource == "vcenters" and case.method.upper() == "DELETE":
            case.path_parameters["id"] = factories.VCenterFactory().pk
    if isinstance(case.body, dict) and "vcenter" in case.body:
        case.body["vcenter"] = _steer(case.body["vcenter"], lab["ids"]["vcenters"])
    case.call_and_validate(headers=lab["headers"], checks=CHECKS)

"""schemathesis against the app's own /api/schema/: every operation, with an admin's token and the demo lab;
then sequences of operations along the schema's links (stateful).

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
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from inventory.models import Cluster, Gpu, Host, ResourceDomain, SyncRun, VgpuProfile, VirtualMachine
from placement.models import Reservation
from tests import factories
from tests.api.support import load_demo, token_client
from tests.factories import UserFactory

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 25  # per operation
STATEFUL_EXAMPLES = 40  # scenarios
STATEFUL_STEPS = 8  # calls per scenario at most


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


@pytest.mark.reliability("api input", "schema-generated requests per operation (schemathesis)")
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


# ---------------------------------------------------------------------------------------------- stateful

STATEFUL_CHECKS = [*CHECKS, use_after_free, ensure_resource_availability]


@pytest.mark.reliability("api input", "request sequences along OpenAPI links (schemathesis stateful)")
def test_api_stateful(api_schema, lab):
    """Sequences of calls where each feeds the next (links inferred from the schema: a created reservation or
    vCenter is read, changed and deleted by its id), checked like single calls plus use-after-free (a deleted
    object answers 404) and resource availability (a created one can be read)."""
    machine = api_schema.as_state_machine()
    links = machine.schema.statistic.transitions.total
    assert links >= 10, f"{links} OpenAPI links between operations: the stateful test would make single calls"
    vcenter_pk = lab["vcenter"].pk

    class Api(machine):
        def setup(self):
            # Every scenario starts from the lab as the fixture made it (a replayed scenario meets the same state).
            self.savepoint = transaction.savepoint()

        def teardown(self):
            transaction.savepoint_rollback(self.savepoint)

        def before_call(self, case):
            deletes_lab = case.method.upper() == "DELETE" and case.path.startswith("/api/vcenters/")
            if deletes_lab and str((case.path_parameters or {}).get("id")) == str(vcenter_pk):
                case.path_parameters["id"] = factories.VCenterFactory().pk  # keep the lab for later steps

        def get_call_kwargs(self, case):
            return {"headers": lab["headers"]}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=STATEFUL_CHECKS, headers=lab["headers"])

    Api.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )

"""JSON bodies are read as strictly as README says (trial F, finding 8): a string or a fraction where a whole number
belongs, a string where true/false belongs, and a key given twice in one object are a 400 naming the field, on
every write body; form-encoded bodies (the browsable API's forms), whose values are all text, still work."""

from __future__ import annotations

import io

import pytest
from rest_framework import serializers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.test import APIClient

from config.api_input import KnownFieldsOnly
from config.parsers import JSONParser
from inventory.models import Host, SyncRun, VCenter
from placement.models import Reservation
from tests import factories

pytestmark = pytest.mark.django_db


def parse(text: str):
    return JSONParser().parse(io.BytesIO(text.encode()), "application/json", {})


# ---------------------------------------------------------------------------------------------- duplicate keys


def test_a_key_given_twice_in_the_body_is_refused_naming_it():
    with pytest.raises(ValidationError) as raised:
        parse('{"gpus_per_vm": 1, "vms": 1, "gpus_per_vm": 16, "vms": 2, "vms": 3}')
    assert raised.value.detail == {
        "gpus_per_vm": ["given 2 times in the JSON object: send each field once"],
        "vms": ["given 3 times in the JSON object: send each field once"],
    }


def test_a_key_given_twice_in_a_nested_object_is_a_parse_error_naming_it():
    with pytest.raises(ParseError, match="JSON parse error - key 'a' given 2 times in one object"):
        parse('{"x": [{"a": 1, "a": 2}]}')


def test_distinct_keys_and_equal_keys_in_different_objects_still_parse():
    assert parse('{"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 3}, {"k": 4}]}') == {
        "a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 3}, {"k": 4}]
    }  # fmt: skip
    assert parse("[1, 2]") == [1, 2]


def raw(client, path: str, text: str):
    return client.generic("POST", path, text, content_type="application/json")


def test_every_json_endpoint_refuses_a_duplicate_key(api_as, demo):
    planner, admin = api_as("planner"), api_as("admin")
    host = Host.objects.filter(vcenter=demo).first()
    cases = [
        (planner, "/api/plans/", '{"gpus_per_vm": 1, "gpus_per_vm": 16}', "gpus_per_vm"),
        (planner, "/api/reservations/", '{"gpus_per_vm": 1, "vm_name": "a", "vm_name": "b"}', "vm_name"),
        (planner, "/api/whatif/", '{"hosts": 1, "hosts": 2}', "hosts"),
        (planner, f"/api/hosts/{host.pk}/smi-capture/", '{"text": "a", "text": "b"}', "text"),
        (admin, "/api/vcenters/", '{"name": "a", "name": "b", "url": "https://a/sdk", "username": "u"}', "name"),
        (admin, "/api/sync-runs/", f'{{"vcenter": {demo.pk}, "vcenter": {demo.pk}}}', "vcenter"),
        (None, "/api/token/", '{"username": "a", "username": "b", "password": "p"}', "username"),
    ]
    runs = SyncRun.objects.count()  # the demo's import
    for client, path, body, field in cases:
        response = raw(client or APIClient(), path, body)
        assert response.status_code == 400, (path, response.content)
        assert response.json() == {field: ["given 2 times in the JSON object: send each field once"]}, path
    assert not Reservation.objects.exists() and SyncRun.objects.count() == runs
    assert not VCenter.objects.filter(name__in=["a", "b"]).exists()


# ---------------------------------------------------------------------------------------------- JSON types


@pytest.mark.parametrize(
    ("field", "value", "start"),
    [
        ("gpus_per_vm", "2", "Not a valid integer"),
        ("gpus_per_vm", 2.0, "Not a valid integer"),
        ("vms", "1", "Not a valid integer"),
        ("vcpus", 4.5, "Not a valid integer"),
        ("anti_affinity", "yes", "Not a valid boolean"),
        ("anti_affinity", 1, "Not a valid boolean"),
        ("anti_affinity", "true", "Not a valid boolean"),
    ],
)
def test_plans_and_reservations_refuse_strings_and_fractions_for_numbers(api_as, demo, field, value, start):
    planner = api_as("planner")
    for path, extra in (("/api/plans/", {}), ("/api/reservations/", {"vm_name": "strict-1"})):
        body = {"gpus_per_vm": 1, **extra, field: value}
        response = planner.post(path, body, format="json")
        assert response.status_code == 400, (path, response.content)
        assert list(response.json()) == [field], response.json()
        assert response.json()[field][0].startswith(start)
    assert not Reservation.objects.exists()


def test_the_message_says_what_to_send_instead(api_as, demo):
    response = api_as("planner").post(
        "/api/plans/", {"gpus_per_vm": "2", "limit": 2.0, "anti_affinity": "yes"}, format="json"
    )
    assert response.json() == {
        "gpus_per_vm": ['Not a valid integer: send a whole number without quotes (2, not "2"), not a string.'],
        "limit": ["Not a valid integer: send a whole number without a decimal point (2, not 2.0), not a "
                  "number with a decimal point."],
        "anti_affinity": ["Not a valid boolean: send true or false without quotes, not a string."],
    }  # fmt: skip


def test_type_errors_come_with_the_other_fields_errors(api_as, demo):
    response = api_as("planner").post("/api/plans/", {"gpus_per_vm": "2", "profile": 80, "bogus": 1}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"gpus_per_vm", "profile", "bogus"}


def test_json_numbers_and_booleans_still_plan(api_as, demo):
    body = {"gpus_per_vm": 1, "vms": 2, "anti_affinity": True, "vcpus": 0, "limit": 3, "min_framebuffer_gb": None}
    response = api_as("planner").post("/api/plans/", body, format="json")
    assert response.status_code == 200, response.content


def test_a_form_encoded_body_is_text_and_still_plans(api_as, demo):
    response = api_as("planner").post("/api/plans/", {"gpus_per_vm": "1", "anti_affinity": "false"})
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("field", "value"),
    [("hosts", "4"), ("seed", 1.0), ("compare", "yes"), ("departures", "0.1"), ("weights", [1, "2"]),
     ("sync", 1)],
)  # fmt: skip
def test_whatif_refuses_strings_for_numbers_and_booleans(api_as, field, value):
    response = api_as("planner").post("/api/whatif/", {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    errors = response.json()[field]
    message = errors["1"][0] if isinstance(errors, dict) else errors[0]
    assert message.startswith("Not a valid")


@pytest.mark.parametrize(
    ("field", "value"),
    [("verify_tls", "false"), ("enabled", 0), ("sync_interval_minutes", "60"), ("sync_interval_minutes", 60.0)],
)
def test_vcenter_bodies_refuse_strings_for_numbers_and_booleans(api_as, field, value):
    admin = api_as("admin")
    body = {"name": "vc-t", "url": "https://vc-t.example/sdk", "username": "u", "password": "p", field: value}
    response = admin.post("/api/vcenters/", body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field] and response.json()[field][0].startswith("Not a valid")
    vcenter = factories.VCenterFactory(name="vc-u")
    response = admin.patch(f"/api/vcenters/{vcenter.pk}/", {field: value}, format="json")
    assert response.status_code == 400 and list(response.json()) == [field]
    assert admin.patch(f"/api/vcenters/{vcenter.pk}/", {"enabled": False}, format="json").status_code == 200


@pytest.mark.parametrize("value", ["1", 1.0, True])
def test_a_sync_run_takes_the_vcenter_id_as_a_whole_number(api_as, value):
    vcenter = factories.VCenterFactory(name="vc-s")
    response = api_as("admin").post("/api/sync-runs/", {"vcenter": value}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["vcenter"] and response.json()["vcenter"][0].startswith("Not a valid id")
    assert not SyncRun.objects.filter(vcenter=vcenter).exists()


class _Body(KnownFieldsOnly):
    count = serializers.IntegerField(required=False)
    ratio = serializers.FloatField(required=False)
    flag = serializers.BooleanField(required=False)
    counts = serializers.ListField(child=serializers.IntegerField(), required=False)
    label = serializers.CharField(required=False)


def test_the_check_is_shared_by_every_known_fields_body():
    good = _Body(data={"count": 2, "ratio": 2, "flag": False, "counts": [1, 2], "label": "x"})
    assert good.is_valid(), good.errors
    assert good.validated_data["ratio"] == 2.0
    bad = _Body(data={"count": True, "ratio": "0.5", "flag": "no", "counts": [1, 2.5], "label": "x"})
    assert not bad.is_valid()
    assert set(bad.errors) == {"count", "ratio", "flag", "counts"}
    assert bad.errors["ratio"][0].startswith("Not a valid number: send a number without quotes")
    assert list(bad.errors["counts"]) == [1]
    assert _Body(data={"count": None, "ratio": None}).is_valid() is False  # null: DRF's own "may not be null"

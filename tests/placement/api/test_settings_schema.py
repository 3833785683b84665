"""The settings document (``GET /api/reservations/{id}/settings/``) has a typed schema, and real documents keep to
it: every key documented, every documented required key present, null only where the schema allows it (it was a
free-form object: trial F, #10)."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from inventory.models import Host
from placement.api.settings_schema import ReservationSettingsSerializer, SettingsReservationSerializer

pytestmark = pytest.mark.django_db


def conformance(value, field: serializers.Field, path: str = "$") -> list[str]:
    """Where ``value`` leaves the schema of ``field`` (keys, required keys, nulls), recursively."""
    if value is None:
        return [] if field.allow_null else [f"{path} is null"]
    if isinstance(field, serializers.ListSerializer):
        return [p for i, item in enumerate(value) for p in conformance(item, field.child, f"{path}[{i}]")]
    if isinstance(field, serializers.ListField):
        return [p for i, item in enumerate(value) for p in conformance(item, field.child, f"{path}[{i}]")]
    if isinstance(field, serializers.Serializer):
        fields = field.fields
        out = [f"{path}.{key} is not documented" for key in value if key not in fields]
        out += [f"{path}.{name} is missing" for name, f in fields.items() if f.required and name not in value]
        out += [p for key, v in value.items() if key in fields for p in conformance(v, fields[key], f"{path}.{key}")]
        return out
    return []


BODIES = {
    "passthrough, large BAR": {"gpus_per_vm": 2, "vm_name": "big-bar"},
    "time-sliced vGPU": {"gpus_per_vm": 1, "consumption": "vgpu", "profile": "nvidia_h100xm-40c", "vm_name": "slice"},
    "device group": {"gpus_per_vm": 2, "consumption": "device-group", "profile": "nvidia_h100xm-80c", "vm_name": "grp"},
    "replicas": {"gpus_per_vm": 1, "vms": 2, "vm_name": "rep"},
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_settings_documents_keep_to_their_schema(api_as, demo, name):
    planner = api_as("planner")
    made = planner.post("/api/reservations/", BODIES[name], format="json")
    assert made.status_code == 201, made.content
    first = made.json()[0] if isinstance(made.json(), list) else made.json()
    doc = planner.get(f"/api/reservations/{first['id']}/settings/").json()
    assert conformance(doc, ReservationSettingsSerializer()) == []
    if name == "passthrough, large BAR":
        assert doc["large_bar"] is not None and "pciPassthru.64bitMMIOSizeGB" in doc["vm_settings"]
    if name == "device group":
        assert doc["device_group"] and doc["domain"] is not None


def test_a_released_reservation_whose_host_left_keeps_to_it(api_as, demo):
    planner = api_as("planner")
    made = planner.post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": "gone"}, format="json").json()
    assert planner.delete(f"/api/reservations/{made['id']}/").status_code == 204
    Host.objects.filter(pk=made["host_id"]).delete()
    doc = planner.get(f"/api/reservations/{made['id']}/settings/").json()
    assert doc["host"]["id"] is None and all(d["removed"] for d in doc["devices"])
    assert conformance(doc, ReservationSettingsSerializer()) == []


def test_conformance_finds_an_undocumented_key_and_a_null():
    doc = {"id": None, "vm_name": "x", "status": "active", "created": "", "expires_at": "", "closed_at": None,
           "created_by": None, "extra": 1}  # fmt: skip
    assert conformance(doc, SettingsReservationSerializer()) == ["$.extra is not documented", "$.id is null"]


def test_the_schema_documents_the_settings_document(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    ref = schema["paths"]["/api/reservations/{id}/settings/"]["get"]["responses"]["200"]["content"]["application/json"]
    name = ref["schema"]["$ref"].rsplit("/", 1)[1]
    props = schema["components"]["schemas"][name]["properties"]
    assert {"devices", "vm_settings", "powercli", "not_runnable"} <= set(props)
    vm_settings = schema["components"]["schemas"][props["vm_settings"]["$ref"].rsplit("/", 1)[1]]["properties"]
    assert "numa.nodeAffinity" in vm_settings and "pciPassthru.64bitMMIOSizeGB" in vm_settings

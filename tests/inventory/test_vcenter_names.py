"""vCenter names are unique ignoring case, on every path (service, API, page, database), naming the field."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from inventory import services
from inventory.models import VCENTER_NAME_TAKEN, VCenter
from tests.api.support import api_as  # noqa: F401
from tests.inventory.test_views import admin, field_errors, text, vcenter_post  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def existing() -> VCenter:
    return services.register_vcenter(name="demo-lab", url="https://a.example.com/sdk", username="u", password="Pw-1")


def test_the_service_refuses_a_name_that_differs_only_in_case(existing):
    with pytest.raises(ValidationError) as info:
        services.register_vcenter(name="DEMO-LAB", url="https://b.example.com/sdk", username="u", password="Pw-2")
    assert info.value.message_dict == {"name": [VCENTER_NAME_TAKEN]}
    other = services.register_vcenter(name="other", url="https://b.example.com/sdk", username="u", password="Pw-2")
    with pytest.raises(ValidationError) as info:
        services.update_vcenter(vcenter=other, name="Demo-Lab")
    assert info.value.message_dict == {"name": [VCENTER_NAME_TAKEN]}
    services.update_vcenter(vcenter=existing, name="Demo-Lab")  # its own name in another case is fine
    assert sorted(VCenter.objects.values_list("name", flat=True)) == ["Demo-Lab", "other"]


def test_the_database_refuses_it_too(existing):
    with pytest.raises(IntegrityError), transaction.atomic():
        VCenter.objects.create(name="Demo-LAB", url="https://b.example.com/sdk", username="u")


def test_the_api_answers_400_naming_name(api_as, existing):  # noqa: F811
    admin_api = api_as("admin")
    body = {"name": "DEMO-LAB", "url": "https://b.example.com/sdk", "username": "u", "password": "Pw-2"}
    response = admin_api.post("/api/vcenters/", body, format="json")
    assert response.status_code == 400 and response.json() == {"name": [VCENTER_NAME_TAKEN]}
    other = admin_api.post("/api/vcenters/", {**body, "name": "other"}, format="json").json()
    patch = admin_api.patch(f"/api/vcenters/{other['id']}/", {"name": "demo-LAB"}, format="json")
    assert patch.status_code == 400 and patch.json() == {"name": [VCENTER_NAME_TAKEN]}
    assert VCenter.objects.count() == 2


def test_the_page_form_names_the_field(admin, existing):  # noqa: F811
    response = admin.post("/vcenters/add/", vcenter_post(name="DEMO-LAB"))
    assert response.status_code == 400 and "ignoring case" in field_errors(text(response), "name")
    assert VCenter.objects.count() == 1

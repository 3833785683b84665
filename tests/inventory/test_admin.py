"""The admin never shows a vCenter's password, encrypted or not, and changing it keeps it encrypted."""

import pytest
from django.contrib.auth import get_user_model

from inventory.models import VCenter
from tests import factories

pytestmark = pytest.mark.django_db
SECRET = "Admin-Page-Secret-9"


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", password="x-Long-Passw0rd"))
    return client


def test_change_page_does_not_render_the_password(admin_client):
    vc = factories.VCenterFactory(password=SECRET)
    body = admin_client.get(f"/admin/inventory/vcenter/{vc.pk}/change/").content.decode()
    assert SECRET not in body and vc.password_encrypted not in body
    assert admin_client.get("/admin/inventory/vcenter/").status_code == 200


def test_saving_with_an_empty_password_keeps_the_old_one(admin_client):
    vc = factories.VCenterFactory(password=SECRET)
    form = {"name": vc.name, "url": vc.url, "username": vc.username, "password": "", "verify_tls": "on",
            "ca_file": "", "enabled": "on", "sync_interval_minutes": "5"}  # fmt: skip
    response = admin_client.post(f"/admin/inventory/vcenter/{vc.pk}/change/", form)
    assert response.status_code == 302
    assert VCenter.objects.get(pk=vc.pk).get_password() == SECRET
    form["password"] = "New-Secret-10"
    admin_client.post(f"/admin/inventory/vcenter/{vc.pk}/change/", form)
    stored = VCenter.objects.get(pk=vc.pk)
    assert stored.get_password() == "New-Secret-10" and "New-Secret-10" not in stored.password_encrypted

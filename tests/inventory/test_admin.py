"""The admin never shows a vCenter's password, encrypted or not, and changing it keeps it encrypted."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from inventory import services
from inventory.models import FabricLink, Gpu, GpuConsumer, PciDevice, ResourceDomain, VCenter
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


def admin_add(admin_client, **overrides):
    form = {"name": "vc-admin", "url": "https://vcsa01/sdk", "username": "svc", "password": SECRET,
            "verify_tls": "on", "ca_file": "", "enabled": "on", "sync_interval_minutes": "5", **overrides}  # fmt: skip
    return admin_client.post("/admin/inventory/vcenter/add/", form)


@pytest.mark.parametrize("url", ["https://vcsa01/sdk", "https://10.0.0.5:8443/sdk", "https://[fd00::10]/sdk"])
def test_the_admin_accepts_short_host_names_and_addresses(admin_client, ca_files, url):
    assert admin_add(admin_client, url=url, ca_file=ca_files["pem"]).status_code == 302
    assert VCenter.objects.get(name="vc-admin").url == url


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"url": "http://vcsa01/sdk"}, "url", "vCenter's API is HTTPS only: use https://vcsa01/sdk"),
        ({"url": "https://vc sa01/sdk"}, "url", "must not contain spaces"),
        ({"ca_file": "missing"}, "ca_file", "does not exist"),
        ({"ca_file": "not-pem"}, "ca_file", "is not a PEM certificate"),
    ],
)
def test_the_admin_refuses_an_http_url_or_a_bad_ca_file(admin_client, ca_files, overrides, field, message):
    if "ca_file" in overrides:
        overrides = {"ca_file": ca_files[overrides["ca_file"]]}
    response = admin_add(admin_client, **overrides)
    assert response.status_code == 200  # the form again, with the error
    assert message in " ".join(response.context["adminform"].form.errors[field])
    assert not VCenter.objects.exists()


def test_the_admin_checks_the_server_under_the_lock_it_saves_under(admin_client, monkeypatch):
    """Two admins adding one server at once: the check and the write happen under the lock the services take."""
    seen = []
    real = services.lock_vcenter_servers

    def spy() -> None:
        seen.append((connection.in_atomic_block, VCenter.objects.filter(name="vc-admin").exists()))
        real()

    monkeypatch.setattr(services, "lock_vcenter_servers", spy)
    assert admin_add(admin_client).status_code == 302
    assert seen == [(True, False)]  # taken inside the transaction, before the row exists
    assert admin_add(admin_client, name="vc-admin-2", url="https://VCSA01:443/other").status_code == 200
    assert VCenter.objects.filter(name="vc-admin-2").count() == 0


def _estate(hosts: int) -> None:
    """Hosts with two GPUs and a link each, in two vCenters under the same host names."""
    a, b = factories.VCenterFactory(), factories.VCenterFactory()
    for i in range(hosts):
        vcenter = a if i % 2 else b
        host = factories.HostFactory(vcenter=vcenter, name=f"esx-{i // 2:03d}")
        link = factories.FabricLinkFactory(host=host)
        factories.GpuConsumerFactory(gpu=link.gpu_a)
        factories.ResourceDomainFactory(host=host).members.add(link.gpu_a, link.gpu_b)


SYNCED = ["host", "gpu", "pcidevice", "virtualmachine", "gpuconsumer", "fabriclink", "resourcedomain", "numanode"]


def test_synced_inventory_is_read_only_and_its_pages_list_no_estate_wide_choices(admin_client):
    """A sync overwrites any edit, and the edit forms listed every GPU or PCI device of the estate as options: one
    page of a 1,000-host estate ran 32,000 queries and timed out its worker."""
    _estate(6)
    for model in (ResourceDomain, GpuConsumer, FabricLink, Gpu, PciDevice):
        name = model._meta.model_name
        body = admin_client.get(f"/admin/inventory/{name}/{model.objects.first().pk}/change/").content.decode()
        assert "<select" not in body, name
        assert 'value="Save"' not in body, name
    assert admin_client.get("/admin/inventory/fabriclink/add/").status_code == 403
    vcenter = VCenter.objects.first()  # removed on the vCenters page, which counts what goes instead of listing it
    assert admin_client.get(f"/admin/inventory/vcenter/{vcenter.pk}/delete/").status_code == 403


def test_inventory_lists_show_the_vcenter_and_their_queries_do_not_grow_with_the_rows(admin_client):
    from django.test.utils import CaptureQueriesContext

    def queries(model: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client.get(f"/admin/inventory/{model}/")
        assert response.status_code == 200, model
        return len(ctx.captured_queries)

    _estate(2)
    few = {model: queries(model) for model in SYNCED}
    _estate(10)
    assert {model: queries(model) for model in SYNCED} == few
    body = admin_client.get("/admin/inventory/host/?q=esx-000").content.decode()
    names = {vc.name for vc in VCenter.objects.all()}
    assert all(name in body for name in names)  # two rows called esx-000, told apart by their vCenter

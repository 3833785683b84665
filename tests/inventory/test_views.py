"""Inventory pages: every page renders for a viewer, every write needs its role and a CSRF token, bad input
gives field-level messages and stores nothing, unknown ids are 404, htmx partials and the 286 poll stop."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from inventory import services
from inventory.models import Cluster, Host, SmiCapture, SyncRun, SyncStatus, VCenter
from tests import factories
from tests.captures import NVL_CAPTURE
from tests.factories import UserFactory
from tests.inventory.cafiles import BAD_CA_FILES
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

HGX, NVL = "esx-hgx-01.lab.local", "esx-h100nvl-01.lab.local"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def demo() -> VCenter:
    vcenter, _ = services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    return vcenter


def client_for(role: str | None, *, csrf: bool = False) -> Client:
    from django.contrib.auth.models import Group

    for name in ("viewer", "planner", "admin"):  # transactional tests flush what the migration created
        Group.objects.get_or_create(name=name)
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(UserFactory(role=role))
    return client


@pytest.fixture
def viewer() -> Client:
    return client_for("viewer")


@pytest.fixture
def planner() -> Client:
    return client_for("planner")


@pytest.fixture
def admin() -> Client:
    return client_for("admin")


def text(response) -> str:
    return response.content.decode()


def field_errors(html: str, field: str) -> str:
    """The text of the error list rendered inside the field's wrapper."""
    match = re.search(
        rf'<div class="field invalid" id="field-{field}">(.*?)</div>\s*(?=<div class="field|<button)', html, re.S
    )
    assert match, f"no error shown at field {field}"
    return re.sub(r"<[^>]+>", " ", match.group(1))


def vcenter_post(**overrides) -> dict:
    data = {
        "name": "vc-new",
        "url": "https://vc-new.example.com/sdk",
        "username": "administrator@vsphere.local",
        "password": "N3w-Passw0rd!",
        "verify_tls": "on",
        "ca_file": "",
        "sync_interval_minutes": "7",
        "enabled": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# ------------------------------------------------------------------------------------------- reading


def test_every_page_renders_for_a_viewer_without_write_controls(viewer, demo):
    run = factories.SyncRunFactory(vcenter=demo)
    cluster = Cluster.objects.get(name="hgx-cluster")
    pages = ["/", f"/clusters/{cluster.pk}/", "/syncs/", f"/syncs/{run.pk}/", "/vcenters/"]
    pages += [f"/inventory/hosts/{h.pk}/" for h in Host.objects.all()]
    for url in pages:
        response = viewer.get(url)
        assert response.status_code == 200, url
        html = text(response)
        assert "htmx.min.js" in html and "X-CSRFToken" in html, url
        assert 'href="/placement/"' in html and 'href="/reservations/"' in html, url
    assert "Add vCenter" not in text(viewer.get("/vcenters/"))
    assert "Test connection" not in text(viewer.get("/vcenters/"))
    assert "Start sync" not in text(viewer.get("/syncs/"))
    host_page = text(viewer.get(f"/inventory/hosts/{Host.objects.get(name=NVL).pk}/"))
    assert "Import an nvidia-smi capture" not in host_page and 'name="text"' not in host_page


def test_write_controls_show_for_their_roles(planner, admin, demo):
    nvl = Host.objects.get(name=NVL)
    assert "Import an nvidia-smi capture" in text(planner.get(f"/inventory/hosts/{nvl.pk}/"))
    assert "Add vCenter" not in text(planner.get("/vcenters/"))
    page = text(admin.get("/vcenters/"))
    assert "Add vCenter" in page and "Test connection" in page and "Remove" in page
    assert "Start sync" in text(admin.get("/syncs/"))


def test_anonymous_visitors_are_sent_to_the_login_page(demo):
    host = Host.objects.first()
    for url in ["/", f"/clusters/{host.cluster_id}/", f"/inventory/hosts/{host.pk}/", "/syncs/", "/vcenters/"]:
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_login_page_renders_and_signs_in():
    UserFactory(username="ops", role="viewer")
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and 'name="username"' in text(page) and "Log out" not in text(page)
    token = client.cookies["csrftoken"].value
    bad = client.post("/accounts/login/", {"username": "ops", "password": "nope", "csrfmiddlewaretoken": token})
    assert bad.status_code == 200 and "correct username and password" in text(bad)
    ok = client.post(
        "/accounts/login/", {"username": "ops", "password": "Test-Passw0rd-123", "csrfmiddlewaretoken": token}
    )
    assert ok.status_code == 302 and ok["Location"] == "/"


def test_overview_shows_vcenters_clusters_and_gpu_states(viewer, demo):
    VCenter.objects.filter(pk=demo.pk).update(last_error="", inventory_stale=False)
    html = text(viewer.get("/"))
    assert "demo" in html and "hgx-cluster" in html and "pcie-cluster" in html
    assert "NVIDIA H100 80GB HBM3" in html and "vGPU same-size" in html and "Passthrough" in html
    assert "esx-h100nvl-01.lab.local" in html  # its nvlink-missing findings put it among the hosts with warnings
    # the cards add up to the GPUs (a UI trial found the 3 partly used vGPU GPUs in none of them)
    cards = dict((label, int(n)) for n, label in re.findall(r"<strong>(\d+)</strong><span>([^<(]+?)\s*[(<]", html))
    parts = ("free", "in use", "partly used vGPU", "reserved", "unavailable")
    assert cards["partly used vGPU"] == 3 and sum(cards[p] for p in parts) == cards["GPUs"] == 20


def test_overview_says_when_a_vcenter_is_stale_with_its_last_good_sync_and_error(viewer, demo):
    VCenter.objects.filter(pk=demo.pk).update(
        inventory_stale=True, last_sync_status=SyncStatus.FAILED, last_error="vc.example.com: connection refused"
    )
    demo.refresh_from_db()
    html = text(viewer.get("/"))
    row = html[html.index('id="vcenter-table"') :]
    assert "stale" in row and "connection refused" in row and "Failed" in row
    assert demo.last_success_at.strftime("%Y-%m-%d %H:%M") in row


def test_reserved_gpus_are_never_shown_as_free(viewer, demo):
    host = Host.objects.get(name="esx-l40s-01.lab.local")
    before = re.search(
        r"NVIDIA L40S</td>\s*<td>Passthrough</td>\s*<td class=\"num\">(\d+)</td>\s*<td class=\"num\"><strong>(\d+)",
        text(viewer.get("/")),
    )
    total, free = map(int, before.groups())
    gpu = host.gpus.filter(consumers__isnull=True).order_by("pci_device__pci_id").first()
    factories.ReservationItemFactory(reservation__host=host, reservation__vm_name="planned-llm", gpu=gpu)
    html = text(viewer.get("/"))
    after = re.search(
        r"NVIDIA L40S</td>\s*<td>Passthrough</td>\s*<td class=\"num\">(\d+)</td>\s*<td class=\"num\"><strong>(\d+)",
        html,
    )
    assert int(after.group(1)) == total and int(after.group(2)) == free - 1
    host_page = text(viewer.get(f"/inventory/hosts/{host.pk}/"))
    row = host_page[host_page.index(f'data-pci="{gpu.pci_device.pci_id}"') :].split("</tr>")[0]
    assert "planned-llm" in row and "reserved" in row and ">free<" not in row


def test_hosts_and_clusters_with_the_same_name_in_two_vcenters_are_told_apart(viewer):
    hosts = []
    for vc_name in ("vc-east", "vc-west"):
        vc = factories.VCenterFactory(name=vc_name)
        cluster = factories.ClusterFactory(vcenter=vc, name="gpu-cluster")
        host = factories.HostFactory(vcenter=vc, cluster=cluster, name="esx-01.lab.local", warnings=["odd PCI tree"])
        factories.GpuFactory(host=host)
        hosts.append(host)
    html = text(viewer.get("/"))
    warnings = html[html.index('id="warning-table"') :]
    for host in hosts:
        assert f'href="/inventory/hosts/{host.pk}/"' in warnings
        assert f'<td class="nowrap">{host.vcenter.name}</td>' in warnings
        assert f'href="/clusters/{host.cluster_id}/"' in html
    clusters = html[html.index('id="cluster-table"') : html.index('id="warning-table"')]
    assert "vc-east" in clusters and "vc-west" in clusters
    page = text(viewer.get(f"/clusters/{hosts[0].cluster_id}/"))
    assert f"/inventory/hosts/{hosts[0].pk}/" in page and f"/inventory/hosts/{hosts[1].pk}/" not in page
    assert "vc-east" in page
    assert "vCenter <strong>vc-west</strong>" in text(viewer.get(f"/inventory/hosts/{hosts[1].pk}/"))


# ------------------------------------------------------------------------------------------- cluster page


def test_cluster_hosts_table_sorts_filters_and_pages(viewer):
    cluster = factories.ClusterFactory(name="mixed")
    for i in range(30):
        host = factories.HostFactory(cluster=cluster, vcenter=cluster.vcenter, name=f"esx-{i:02d}.lab")
        model = "NVIDIA L40S" if i % 3 == 0 else "NVIDIA H100 80GB HBM3"
        gpus = [factories.GpuFactory(host=host, model=model, graphics_type="direct", vgpu_mode="") for _ in range(2)]
        if i % 2:
            factories.GpuConsumerFactory(gpu=gpus[0], kind="passthrough", profile="")
    url = f"/clusters/{cluster.pk}/"
    first = text(viewer.get(url))
    assert first.count('class="strip"') >= 25 and "esx-00.lab" in first and "esx-29.lab" not in first
    assert "30 rows" in first  # paginated
    assert '<option value="" selected>any mode</option>' in first  # not Django's "---------"
    assert "esx-29.lab" in text(viewer.get(url, {"page": 2}))
    assert text(viewer.get(url, {"sort": "-name"})).index("esx-29.lab") > 0
    l40s = text(viewer.get(url, {"gpu_model": "L40S"}))
    assert "esx-03.lab" in l40s and "esx-01.lab" not in l40s
    free2 = text(viewer.get(url, {"min_free_gpus": 2}))
    assert "esx-00.lab" in free2 and "esx-01.lab" not in free2
    assert "esx-00.lab" not in text(viewer.get(url, {"mode": "multiInstanceGpu"}))
    partial = viewer.get(url, {"gpu_model": "L40S"}, HTTP_HX_TARGET="hosts-table", **HTMX)
    assert partial.status_code == 200 and "<html" not in text(partial) and 'id="hosts-table"' in text(partial)
    bad = text(viewer.get(url, {"min_free_gpus": "lots"}))
    assert "The filter is not valid" in bad and "min_free_gpus" in bad


def test_occupancy_strip_shows_free_used_reserved_and_partial_vgpu(viewer):
    cluster = factories.ClusterFactory()
    host = factories.HostFactory(cluster=cluster, vcenter=cluster.vcenter)
    _free, used, reserved, partial = (factories.GpuFactory(host=host) for _ in range(4))
    used.graphics_type, used.vgpu_mode = "direct", ""
    used.save()
    factories.GpuConsumerFactory(gpu=used, kind="passthrough", profile="")
    factories.VgpuProfileFactory(name="nvidia_h100xm-20c", framebuffer_gb=20)
    factories.GpuConsumerFactory(gpu=partial, profile="nvidia_h100xm-20c")
    factories.ReservationItemFactory(reservation__host=host, gpu=reserved)
    html = text(viewer.get(f"/clusters/{cluster.pk}/"))
    strip = html[html.index('class="strip" role="img"') :].split("</span></span>")[0]
    assert strip.count('class="g free"') == 1 and strip.count('class="g used"') == 1
    assert strip.count('class="g reserved"') == 1 and strip.count('class="g partial"') == 1
    assert "60 GB free of 80" in strip  # the hover title of the partly used vGPU


def test_host_rows_count_in_use_and_partly_used_gpus_as_the_cluster_cards_do(viewer):
    cluster = factories.ClusterFactory()
    host = factories.HostFactory(cluster=cluster, vcenter=cluster.vcenter, name="esx-vgpu")
    partial, full = factories.GpuFactory(host=host), factories.GpuFactory(host=host)
    factories.VgpuProfileFactory(name="nvidia_h100xm-20c", framebuffer_gb=20)
    factories.VgpuProfileFactory(name="nvidia_h100xm-80c", framebuffer_gb=80)
    factories.GpuConsumerFactory(gpu=partial, profile="nvidia_h100xm-20c")
    factories.GpuConsumerFactory(gpu=full, profile="nvidia_h100xm-80c")
    html = text(viewer.get(f"/clusters/{cluster.pk}/"))
    cards = re.findall(r"<li[^>]*><strong>(\d+)</strong><span>([^<]+)</span></li>", html)
    assert ("1", "in use") in cards and ("1", "partly used vGPU") in cards
    row = html[html.index("esx-vgpu</a>") :].split("</tr>")[0]
    cells = re.findall(r'<td class="num"\s*>\s*(\S+?)\s*</td>', row)
    assert cells == ["2", "0", "1", "1", "0"]  # GPUs, free, in use, partly used, reserved (in use said 2 before)


# ------------------------------------------------------------------------------------------- host page


def test_host_page_shows_gpus_modes_locks_consumers_domains_numa_and_svg(viewer, demo):
    hgx = Host.objects.get(name=HGX)
    html = text(viewer.get(f"/inventory/hosts/{hgx.pk}/"))
    assert "<svg" in html and html.count("<title>GPU") >= 8
    assert html.count('<tr data-pci="') == 8
    assert "nvidia_h100xm-80c" in html and "llama-70b-tp2-a" in html  # profile lock and consumers
    assert "NUMA nodes" in html and "Resource domains" in html and "NVSwitch" in html
    assert "{% block" not in html and "&lt;h3&gt;" not in html


def test_paste_form_imports_inline_with_htmx_and_shows_the_new_drawing(planner, demo):
    nvl = Host.objects.get(name=NVL)
    response = planner.post(f"/inventory/hosts/{nvl.pk}/smi/", {"text": NVL_CAPTURE}, **HTMX)
    assert response.status_code == 200
    html = text(response)
    assert "<html" not in html and html.lstrip().startswith('<div id="fabric">')
    assert "Capture imported (4 GPUs)" in html and "<svg" in html and 'id="gpu-table"' in html
    assert "NVLINK" in html and "smi-import" in html
    assert SmiCapture.objects.filter(host=nvl).count() == 1


def test_paste_form_error_names_the_line_keeps_the_text_and_stores_nothing(planner, demo):
    nvl = Host.objects.get(name=NVL)
    short_row = NVL_CAPTURE.replace("GPU1\tNV12\t X \tSYS\tSYS\t0-55\t0", "GPU1\tNV12")
    three = "\tGPU0\tGPU1\tGPU2\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tNV12\tSYS\t0-55\t0\n"
    three += "GPU1\tNV12\t X \tSYS\t0-55\t0\nGPU2\tSYS\tSYS\t X \t56-111\t1\n"
    for body, line, says in [(short_row, 3, "row GPU1 has 2 cells"), (three, 1, "lists 3 GPU(s) but host")]:
        response = planner.post(f"/inventory/hosts/{nvl.pk}/smi/", {"text": body}, **HTMX)
        assert response.status_code == 400
        html = text(response)
        error = html[html.index('id="smi-error"') :].split("</div>")[0]
        assert f"line {line}" in error and says in error and f'data-line="{line}"' in error
        assert "GPU0\t X \tNV12\tSYS" in html  # the pasted text is kept in the textarea
    assert not SmiCapture.objects.exists()


def test_paste_form_without_javascript_redirects_or_shows_the_page(planner, demo):
    nvl = Host.objects.get(name=NVL)
    bad = planner.post(f"/inventory/hosts/{nvl.pk}/smi/", {"text": "not a capture"})
    assert bad.status_code == 400 and "<html" in text(bad) and "line" in text(bad)
    ok = planner.post(f"/inventory/hosts/{nvl.pk}/smi/", {"text": NVL_CAPTURE}, follow=True)
    assert ok.status_code == 200 and "Capture imported" in text(ok)


def test_an_empty_paste_is_a_field_error(planner, demo):
    nvl = Host.objects.get(name=NVL)
    response = planner.post(f"/inventory/hosts/{nvl.pk}/smi/", {"text": ""}, **HTMX)
    assert response.status_code == 400 and "This field is required" in text(response)
    assert not SmiCapture.objects.exists()


def test_an_oversized_paste_is_413_and_stores_nothing(planner, demo):
    nvl = Host.objects.get(name=NVL)
    big = NVL_CAPTURE + "#" * (300 * 1024)
    response = planner.post(f"/inventory/hosts/{nvl.pk}/smi/", {"text": big}, **HTMX)
    assert response.status_code == 413 and "larger than 256 KiB" in text(response)
    just_over = NVL_CAPTURE + "\n" * (256 * 1024)
    response = planner.post(f"/inventory/hosts/{nvl.pk}/smi/", {"text": just_over, "query_csv": ""})
    assert response.status_code == 413
    assert not SmiCapture.objects.exists()


# ------------------------------------------------------------------------------------------- roles and CSRF


def write_requests(demo: VCenter) -> list[tuple[str, dict]]:
    nvl = Host.objects.get(name=NVL)
    return [
        ("/vcenters/add/", vcenter_post()),
        (f"/vcenters/{demo.pk}/edit/", vcenter_post(name=demo.name)),
        (f"/vcenters/{demo.pk}/test/", {}),
        (f"/vcenters/{demo.pk}/delete/", {}),
        ("/syncs/start/", {"vcenter": demo.pk}),
        (f"/inventory/hosts/{nvl.pk}/smi/", {"text": NVL_CAPTURE}),
    ]


def state() -> tuple:
    return (
        list(VCenter.objects.values_list("name", "url", "sync_interval_minutes", "password_encrypted")),
        SyncRun.objects.count(),
        SmiCapture.objects.count(),
        PeriodicTask.objects.filter(task="inventory.tasks.sync_vcenter_task").count(),
    )


def test_every_write_refuses_a_viewer_and_stores_nothing(viewer, demo):
    before = state()
    for url, data in write_requests(demo):
        assert viewer.post(url, data).status_code == 403, url
        assert viewer.post(url, data, **HTMX).status_code == 403, url
    for url in ["/vcenters/add/", f"/vcenters/{demo.pk}/edit/", f"/vcenters/{demo.pk}/delete/"]:
        assert viewer.get(url).status_code == 403, url
    assert state() == before


def test_a_planner_imports_captures_but_cannot_manage_vcenters_or_syncs(planner, demo):
    before = state()
    for url, data in write_requests(demo)[:5]:
        assert planner.post(url, data).status_code == 403, url
    assert state() == before


def test_every_form_enforces_csrf(demo):
    client = client_for("admin", csrf=True)
    before = state()
    for url, data in write_requests(demo):
        assert client.post(url, data).status_code == 403, url
        assert client.post(url, data, **HTMX).status_code == 403, url
    assert state() == before
    client.get("/vcenters/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post("/vcenters/add/", vcenter_post(), HTTP_X_CSRFTOKEN=token)  # htmx sends the header
    assert response.status_code == 302
    nvl = Host.objects.get(name=NVL)
    ok = client.post(f"/inventory/hosts/{nvl.pk}/smi/", {"text": NVL_CAPTURE, "csrfmiddlewaretoken": token}, **HTMX)
    assert ok.status_code == 200


def test_logout_needs_a_post_with_csrf():
    client = client_for("viewer", csrf=True)
    assert client.post("/accounts/logout/").status_code == 403
    html = text(client.get("/"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert client.post("/accounts/logout/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_unknown_ids_are_404(admin, planner):
    for url in [
        "/clusters/999999/",
        "/inventory/hosts/999999/",
        "/inventory/hosts/999999/topology.svg",
        "/syncs/999999/",
        "/vcenters/999999/edit/",
        "/vcenters/999999/delete/",
    ]:
        assert admin.get(url).status_code == 404, url
    for url in ["/vcenters/999999/edit/", "/vcenters/999999/test/", "/vcenters/999999/delete/"]:
        assert admin.post(url, vcenter_post()).status_code == 404, url
    assert planner.post("/inventory/hosts/999999/smi/", {"text": NVL_CAPTURE}).status_code == 404


# ------------------------------------------------------------------------------------------- vCenters


def test_admin_adds_a_vcenter_with_its_schedule_and_the_password_is_never_shown(admin):
    response = admin.post("/vcenters/add/", vcenter_post())
    assert response.status_code == 302 and response["Location"] == "/vcenters/"
    vc = VCenter.objects.get(name="vc-new")
    assert vc.get_password() == "N3w-Passw0rd!" and vc.sync_interval_minutes == 7 and vc.verify_tls
    task = PeriodicTask.objects.get(name="sync vCenter vc-new")
    assert task.interval.every == 7 and task.enabled
    for url in ["/vcenters/", f"/vcenters/{vc.pk}/edit/", "/"]:
        html = text(admin.get(url))
        assert "N3w-Passw0rd!" not in html and vc.password_encrypted not in html, url
    edit = text(admin.get(f"/vcenters/{vc.pk}/edit/"))
    assert re.search(r'<input type="password" name="password"[^>]*>', edit)
    assert 'value="N3w' not in edit and "Leave empty to keep the stored password" in edit


def test_editing_with_an_empty_password_keeps_it_and_updates_the_schedule(admin):
    vc = services.register_vcenter(name="vc-a", url="https://a.example.com/sdk", username="u", password="Old-Pw-123")
    form = vcenter_post(name="vc-a", url=vc.url, password="", sync_interval_minutes=15)
    response = admin.post(f"/vcenters/{vc.pk}/edit/", form)
    assert response.status_code == 302
    vc.refresh_from_db()
    assert vc.get_password() == "Old-Pw-123" and vc.sync_interval_minutes == 15
    assert PeriodicTask.objects.get(name="sync vCenter vc-a").interval.every == 15
    admin.post(f"/vcenters/{vc.pk}/edit/", vcenter_post(name="vc-a", url=vc.url, password="Brand-New-456"))
    vc.refresh_from_db()
    assert vc.get_password() == "Brand-New-456"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "has spaces"}, "name", "valid"),
        ({"name": ""}, "name", "required"),
        ({"url": "not a url"}, "url", "valid URL"),
        ({"url": "ftp://vc.example.com/sdk"}, "url", ""),
        ({"username": ""}, "username", "required"),
        ({"password": ""}, "password", "required"),
        ({"sync_interval_minutes": "0"}, "sync_interval_minutes", "greater than or equal to 1"),
        ({"sync_interval_minutes": "soon"}, "sync_interval_minutes", "whole number"),
    ],
)
def test_bad_vcenter_input_gives_field_messages_and_stores_nothing(admin, overrides, field, message):
    before = state()
    response = admin.post("/vcenters/add/", vcenter_post(**overrides))
    assert response.status_code == 400
    errors = field_errors(text(response), field)
    assert message in errors
    assert state() == before
    assert "N3w-Passw0rd!" not in text(response)  # not even the rejected password is echoed


def test_a_duplicate_name_is_a_field_error(admin):
    services.register_vcenter(name="vc-dup", url="https://a.example.com/sdk", username="u", password="Pw-123456")
    before = state()
    response = admin.post("/vcenters/add/", vcenter_post(name="vc-dup"))
    assert response.status_code == 400 and "already exists" in field_errors(text(response), "name")
    assert state() == before


def test_bad_edit_changes_nothing(admin):
    vc = services.register_vcenter(name="vc-b", url="https://b.example.com/sdk", username="u", password="Pw-123456")
    before = state()
    response = admin.post(f"/vcenters/{vc.pk}/edit/", vcenter_post(name="vc-b", url="nope", sync_interval_minutes=9))
    assert response.status_code == 400 and "valid URL" in field_errors(text(response), "url")
    assert state() == before


@pytest.mark.parametrize(
    "url", ["https://vcsa01/sdk", "https://vcsa01:8443/sdk", "https://10.0.0.5/sdk", "https://[fd00::10]:8443/sdk"]
)
def test_short_host_names_and_addresses_are_accepted(admin, url):
    response = admin.post("/vcenters/add/", vcenter_post(url=url))
    assert response.status_code == 302, field_errors(text(response), "url")
    assert VCenter.objects.get(name="vc-new").url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://vc-new.example.com/sdk", "vCenter's API is HTTPS only: use https://vc-new.example.com/sdk"),
        ("ftp://vc-new.example.com/sdk", "HTTPS only, not ftp://"),
        ("vcsa01/sdk", "must start with https:// (did you mean https://vcsa01/sdk?)"),
        ("https://vc new/sdk", "must not contain spaces"),
        ("https:///sdk", "the host is missing"),
    ],
)
def test_urls_other_than_https_to_a_host_are_refused_with_the_reason(admin, url, message):
    before = state()
    response = admin.post("/vcenters/add/", vcenter_post(url=url))
    assert response.status_code == 400 and message in html.unescape(field_errors(text(response), "url"))
    assert state() == before


def test_a_pem_ca_file_is_accepted(admin, ca_files):
    response = admin.post("/vcenters/add/", vcenter_post(ca_file=ca_files["pem"]))
    assert response.status_code == 302
    assert VCenter.objects.get(name="vc-new").ca_file == ca_files["pem"]


@pytest.mark.parametrize(("kind", "message"), BAD_CA_FILES.items())
def test_a_ca_file_that_does_not_load_is_refused_with_the_reason(admin, ca_files, kind, message):
    before = state()
    response = admin.post("/vcenters/add/", vcenter_post(ca_file=ca_files[kind]))
    assert response.status_code == 400 and message in field_errors(text(response), "ca_file")
    assert state() == before and not VCenter.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("url", "http://b.example.com/sdk", "HTTPS only"), ("ca_file", "missing", "does not exist")],
)
def test_an_edit_to_an_http_url_or_a_bad_ca_file_changes_nothing(admin, ca_files, field, value, message):
    vc = services.register_vcenter(name="vc-b", url="https://b.example.com/sdk", username="u", password="Pw-123456")
    before = state()
    value = ca_files.get(value, value)
    response = admin.post(f"/vcenters/{vc.pk}/edit/", vcenter_post(name="vc-b", password="", **{field: value}))
    assert response.status_code == 400 and message in field_errors(text(response), field)
    assert state() == before and VCenter.objects.get(pk=vc.pk).ca_file == ""


def test_a_stored_http_vcenter_is_listed_and_its_form_names_the_problem(admin):
    vc = factories.VCenterFactory(name="vc-old", url="http://vc-old.example.com/sdk")  # stored before the checks
    assert "http://vc-old.example.com/sdk" in text(admin.get("/vcenters/"))
    assert admin.get(f"/vcenters/{vc.pk}/edit/").status_code == 200
    response = admin.post(f"/vcenters/{vc.pk}/edit/", vcenter_post(name="vc-old", url=vc.url, password=""))
    assert response.status_code == 400 and "use https://vc-old.example.com/sdk" in field_errors(text(response), "url")
    fixed = admin.post(f"/vcenters/{vc.pk}/edit/", vcenter_post(name="vc-old", url="https://vc-old.example.com/sdk"))
    assert fixed.status_code == 302 and VCenter.objects.get(pk=vc.pk).url == "https://vc-old.example.com/sdk"


def test_remove_asks_first_then_removes_the_vcenter_and_its_schedule(admin, demo):
    confirm = admin.get(f"/vcenters/{demo.pk}/delete/")
    assert confirm.status_code == 200 and "5 hosts" in text(confirm)
    assert VCenter.objects.filter(pk=demo.pk).exists()
    services.schedule_vcenter_sync(vcenter=demo)
    response = admin.post(f"/vcenters/{demo.pk}/delete/")
    assert response.status_code == 302
    assert not VCenter.objects.filter(pk=demo.pk).exists() and not Host.objects.exists()
    assert not PeriodicTask.objects.filter(task="inventory.tasks.sync_vcenter_task").exists()


def test_connection_test_shows_the_error_message(admin):
    vc = services.register_vcenter(
        name="vc-down", url="https://127.0.0.1:9/sdk", username="u", password="Pw-123456", verify_tls=False
    )
    response = admin.post(f"/vcenters/{vc.pk}/test/", **HTMX)
    assert response.status_code == 200
    html = text(response)
    assert "<html" not in html and 'data-test="error"' in html and "Connection failed" in html
    assert "Pw-123456" not in html


@pytest.mark.vcsim
def test_connection_test_against_the_vcsim_lab_shows_the_version(admin, lab_vcenter):
    html = text(admin.post(f"/vcenters/{lab_vcenter.pk}/test/", **HTMX))
    assert 'data-test="ok"' in html and "version" in html
    response = admin.post(f"/vcenters/{lab_vcenter.pk}/test/", follow=True)  # without htmx: a message
    assert "connected to" in text(response)


# ------------------------------------------------------------------------------------------- syncs


def test_a_finished_run_answers_286_and_stops_polling(viewer, demo):
    counts = {"seen_hosts": 4, "hosts_created": 1, "gpus_updated": 2}
    run = factories.SyncRunFactory(vcenter=demo, status=SyncStatus.SUCCESS, counts=counts, round_trips=3)
    response = viewer.get(f"/syncs/{run.pk}/", **HTMX)
    assert response.status_code == 286
    assert response["HX-Trigger"] == "sync-finished"
    html = text(response)
    assert 'hx-trigger="every 1s"' not in html and "Success" in html and "hosts 4" in html and "changes 3" in html
    failed = factories.SyncRunFactory(vcenter=demo, status=SyncStatus.FAILED, error="login refused")
    response = viewer.get(f"/syncs/{failed.pk}/", **HTMX)
    assert response.status_code == 286 and "login refused" in text(response)


def test_an_imported_inventory_is_in_the_sync_history(viewer, demo):
    run = SyncRun.objects.get(vcenter=demo)
    assert run.trigger == SyncRun.Trigger.IMPORT and run.status == SyncStatus.SUCCESS and run.finished_at
    assert run.counts["seen_hosts"] == 5 and run.counts["seen_gpus"] == 20
    html = text(viewer.get("/syncs/"))
    assert "Inventory import" in html and "No sync has run yet" not in html  # the vCenter says "last sync: success"
    for label in ("any vCenter", "any status", "any trigger"):  # the history filter's choices, not "---------"
        assert f'<option value="" selected>{label}</option>' in html


def test_a_running_run_keeps_polling(viewer, demo):
    run = factories.SyncRunFactory(vcenter=demo, status=SyncStatus.RUNNING, finished_at=None, progress_current=120)
    response = viewer.get(f"/syncs/{run.pk}/", **HTMX)
    assert response.status_code == 200
    html = text(response)
    assert 'hx-trigger="every 1s"' in html and f'hx-get="/syncs/{run.pk}/"' in html and "120 objects" in html
    assert "every 1s" in text(viewer.get("/syncs/"))  # the list polls the active runs
    page = viewer.get(f"/syncs/{run.pk}/")
    assert page.status_code == 200 and "<html" in text(page)


def test_sync_history_lists_runs_with_counts_durations_and_errors(viewer, demo):
    factories.SyncRunFactory(vcenter=demo, counts={"seen_hosts": 4, "seen_gpus": 18}, round_trips=5)
    factories.SyncRunFactory(vcenter=demo, status=SyncStatus.FAILED, error="certificate verify failed")
    html = text(viewer.get("/syncs/"))
    assert "hosts 4" in html and "GPUs 18" in html and "certificate verify failed" in html and " s<" in html
    only_failed = text(viewer.get("/syncs/", {"status": "failed"}, HTTP_HX_TARGET="syncs-table", **HTMX))
    assert "certificate verify failed" in only_failed and "GPUs 18" not in only_failed and "<html" not in only_failed


def test_the_syncs_page_gives_each_vcenter_field_its_own_id(admin, demo):
    """A UI trial: the start form and the history filter both rendered id="id_vcenter" (the filter's label focused
    the start form's select)."""
    import re

    html = text(admin.get("/syncs/"))
    ids = re.findall(r'id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in set(ids) if ids.count(i) > 1)
    assert 'for="start_vcenter"' in html and 'id="start_vcenter"' in html


def test_the_hosts_table_sorts_only_by_what_its_columns_show(viewer, demo):
    """A UI trial: "In use" showed wholly used GPUs but sorted by GPUs held by any VM (partly used included)."""
    from inventory.models import Cluster

    html = text(viewer.get(f"/clusters/{Cluster.objects.get(name='pcie-cluster').pk}/"))
    assert "sort=gpus_free" in html and "sort=gpus_used" not in html


def test_the_vcenter_edit_page_says_when_the_password_is_needed_again(admin):
    vc = services.register_vcenter(name="vc-pw", url="https://vc-pw.example.com/sdk", username="u", password="Pw-12345")
    html = text(admin.get(f"/vcenters/{vc.pk}/edit/"))
    assert "for turning TLS verification off and for another CA bundle" in html


def test_starting_a_sync_of_an_unknown_vcenter_is_a_field_error(admin):
    response = admin.post("/syncs/start/", {"vcenter": 999999}, **HTMX)
    assert response.status_code == 400 and "Select a valid choice" in text(response)
    assert response["HX-Retarget"] == "#start-form"
    assert not SyncRun.objects.exists()
    assert admin.post("/syncs/start/", {}).status_code == 400


@pytest.mark.django_db(transaction=True)  # the task is sent on commit: let the request commit
def test_a_failed_sync_started_from_the_page_is_shown_finished(admin):
    vc = services.register_vcenter(
        name="vc-down", url="https://127.0.0.1:9/sdk", username="u", password="Pw-123456", verify_tls=False
    )
    response = admin.post("/syncs/start/", {"vcenter": vc.pk}, **HTMX)  # no broker: the task ran in-process
    assert response.status_code == 200
    run = SyncRun.objects.get(vcenter=vc)
    assert run.status == SyncStatus.FAILED and run.trigger == SyncRun.Trigger.MANUAL
    html = text(response)
    assert f'id="run-{run.pk}"' in html and "every 1s" not in html and "Failed" in html
    assert response["HX-Trigger"] == "sync-finished"


@pytest.mark.vcsim
@pytest.mark.django_db(transaction=True)
def test_admin_syncs_the_vcsim_lab_from_the_page(admin, lab_vcenter):
    response = admin.post("/syncs/start/", {"vcenter": lab_vcenter.pk})
    run = SyncRun.objects.get(vcenter=lab_vcenter)
    assert response.status_code == 302 and response["Location"] == reverse("inventory:sync_run", args=[run.pk])
    assert run.status == SyncStatus.SUCCESS and run.counts and run.round_trips > 0
    assert admin.get(f"/syncs/{run.pk}/", **HTMX).status_code == 286
    assert Host.objects.filter(vcenter=lab_vcenter).count() == 5


# ------------------------------------------------------------------------------------------- queries


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def _add_hosts(cluster, start: int, n: int) -> Host:
    for i in range(start, start + n):
        host = factories.HostFactory(cluster=cluster, vcenter=cluster.vcenter, name=f"h{i:03d}", warnings=["w"])
        for _ in range(4):
            gpu = factories.GpuFactory(host=host)
            factories.GpuConsumerFactory(gpu=gpu, profile="nvidia_h100xm-80c")
        factories.ReservationItemFactory(reservation__host=host, gpu=factories.GpuFactory(host=host))
    return host


def test_pages_run_a_constant_number_of_queries(viewer, django_assert_max_num_queries):
    factories.VgpuProfileFactory()
    cluster = factories.ClusterFactory()
    host = _add_hosts(cluster, 0, 5)
    small = {url: _count(viewer, url) for url in ["/", f"/clusters/{cluster.pk}/", f"/inventory/hosts/{host.pk}/"]}
    _add_hosts(cluster, 5, 40)
    large = {url: _count(viewer, url) for url in small}
    assert large == small
    assert max(small.values()) <= 25, small


def test_htmx_2_is_vendored_and_clusters_have_their_list(viewer):
    from django.conf import settings

    vendored = settings.BASE_DIR / "static" / "vendor" / "htmx"
    assert 'version:"2.' in (vendored / "htmx.min.js").read_text()
    assert (vendored / "LICENSE").exists() and "2.0" in (vendored / "README.md").read_text()
    response = viewer.get("/clusters/")  # its own page (tests/inventory/test_page_fixes.py), no longer a redirect
    assert response.status_code == 200 and "<h1>Clusters</h1>" in text(response)


def test_a_missing_page_keeps_the_navigation(admin, client):
    """Production 404s were Django's bare "Not Found" page with no way back."""
    page = admin.get("/clusters/999999/")
    assert page.status_code == 404
    html = page.content.decode()
    assert "<h1>Not found</h1>" in html and 'href="/placement/"' in html and "Skip to content" in html
    assert "/clusters/999999/" in html
    anonymous = client.get("/no-such-page/")
    assert anonymous.status_code == 404 and "Log out" not in anonymous.content.decode()


def test_a_back_forward_restore_of_a_cluster_page_carries_no_out_of_band_filter_inputs(viewer):
    """An estate admin's trial: htmx logged oobErrorNoTarget on Back: the restored whole page carried a second,
    out-of-band copy of the filter form's hidden sort/page-size inputs."""
    cluster = factories.ClusterFactory(name="restore")
    factories.HostFactory(cluster=cluster, vcenter=cluster.vcenter, name="esx-r.lab")
    url = f"/clusters/{cluster.pk}/?sort=name"
    restored = text(viewer.get(url, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"))
    assert "<html" in restored and restored.count('id="host-filters-keep"') == 1
    partial = text(viewer.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="hosts-table"))
    assert "<html" not in partial and partial.count('id="host-filters-keep" hx-swap-oob="true"') == 1


def test_a_clusters_hosts_filter_by_connection_state_maintenance_and_warnings(viewer):
    """An estate admin's trial: the cluster page offered name, GPU model, mode and free count only; the hosts that
    need attention could be found by typing URL parameters."""
    cluster = factories.ClusterFactory(name="attention")
    factories.HostFactory(cluster=cluster, vcenter=cluster.vcenter, name="esx-ok.lab")
    factories.HostFactory(cluster=cluster, vcenter=cluster.vcenter, name="esx-mm.lab", maintenance_mode=True)
    factories.HostFactory(cluster=cluster, vcenter=cluster.vcenter, name="esx-nr.lab", connection_state="notResponding")
    url = f"/clusters/{cluster.pk}/"
    page = text(viewer.get(url))
    for name in ("connection_state", "maintenance_mode", "warnings"):
        assert f'name="{name}"' in page, name
    assert 'name="cluster"' not in page and 'name="vcenter"' not in page  # the page's own
    assert "esx-mm.lab" in text(viewer.get(url, {"maintenance_mode": "true"}))
    assert "esx-ok.lab" not in text(viewer.get(url, {"maintenance_mode": "true"}))
    only_nr = text(viewer.get(url, {"connection_state": "notResponding"}))
    assert "esx-nr.lab" in only_nr and "esx-ok.lab" not in only_nr
    warned = text(viewer.get(url, {"warnings": "true"}))
    assert "esx-mm.lab" in warned and "esx-nr.lab" in warned and "esx-ok.lab" not in warned

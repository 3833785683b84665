"""Inventory pages as a new admin reads them: the capture error speaks of the page's field, the schedule says
what the embedded mode does, the drawing tells reserved GPUs from used ones, the Health card names every failing
vCenter, bad filter and sort values are a 400 that says so, and /clusters/ is a list of clusters."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from django.test import override_settings
from django.urls import reverse

from inventory import services
from inventory.models import Cluster, Host, SyncStatus, VCenter
from tests import factories
from tests.inventory.test_views import admin, client_for, planner, text, vcenter_post, viewer  # noqa: F401
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

NVL, HGX = "esx-h100nvl-01.lab.local", "esx-hgx-01.lab.local"
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "topo"
SVG = "{http://www.w3.org/2000/svg}"
EMBEDDED = "no scheduled syncs in the embedded mode: use Sync now"


@pytest.fixture
def demo() -> VCenter:
    vcenter, _ = services.import_inventory(
        document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo-lab"
    )
    return vcenter


# ------------------------------------------------------------------ 3: capture error wording


def test_a_capture_from_another_machine_is_refused_in_the_words_of_the_page(planner, demo):  # noqa: F811
    nvl = Host.objects.get(name=NVL)
    capture = (SAMPLES / "l40s-4x-aws-g6e12xlarge-vm.txt").read_text()
    response = planner.post(f"/inventory/hosts/{nvl.pk}/smi/", {"text": capture}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    error = text(response)[text(response).index('id="smi-error"') :].split("</div>")[0]
    assert "was it taken on this host?" in error
    assert "--csv" not in error  # a CLI option: the page has no such thing
    assert "nvidia-smi --query-gpu=index,pci.bus_id,module_id --format=csv" in error  # the page's optional field


# ------------------------------------------------------------------ 4: the schedule in the embedded mode


@override_settings(REDIS_URL="")
def test_the_embedded_mode_says_no_sync_runs_on_a_schedule(admin, demo):  # noqa: F811
    response = admin.post("/vcenters/add/", vcenter_post(), follow=True)
    flash = text(response)[text(response).index('id="flash"') :].split("</div>\n    </div>")[0]
    assert "vCenter vc-new added; no scheduled syncs in the embedded mode: use Sync now" in flash
    assert "syncs every" not in flash
    listing = text(admin.get("/vcenters/"))
    assert EMBEDDED in listing and "every 7 min" not in listing
    assert "synced on its own schedule" not in listing
    overview = text(admin.get("/"))
    assert EMBEDDED in overview and "every 7 min" not in overview
    assert "No scheduled syncs in the embedded mode" in text(admin.get("/syncs/"))
    assert EMBEDDED in text(admin.get(reverse("inventory:vcenter_add")))  # the interval field's help


def test_with_a_broker_the_schedule_is_shown(demo):
    from inventory.tables import VCenterTable

    vcenter = VCenter.objects.get(name="demo-lab")
    vcenter.enabled, vcenter.sync_interval_minutes = True, 7
    with override_settings(REDIS_URL="redis://127.0.0.1:6379/0"):
        assert VCenterTable([]).render_sync_interval_minutes(vcenter) == "every 7 min"
    with override_settings(REDIS_URL=""):
        assert EMBEDDED in VCenterTable([]).render_sync_interval_minutes(vcenter)


# ------------------------------------------------------------------ 5: reserved GPUs in the drawing


def test_the_drawing_shows_reserved_gpus_in_their_own_style_with_a_legend_entry(viewer, demo):  # noqa: F811
    host = Host.objects.get(name=HGX)
    free = host.gpus.filter(consumers__isnull=True).order_by("pci_device__pci_id").first()
    factories.ReservationItemFactory(reservation__host=host, reservation__vm_name="rag-2", gpu=free)
    svg = viewer.get(f"/inventory/hosts/{host.pk}/topology.svg").content
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own output
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "reserved GPU" in texts  # the legend
    assert "reserved: rag-2" in texts and not any(t.startswith("VM reserved") for t in texts)
    boxes = {}
    for group in root.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        rect = group.find(f"{SVG}rect")
        if title is not None and rect is not None and re.match(r"GPU\d+ ", title.text or ""):
            boxes[title.text.split()[1]] = (rect.get("fill"), rect.get("stroke"), title.text)
    reserved, used = boxes[free.pci_id], boxes[host.gpus.filter(consumers__isnull=False).first().pci_id]
    assert reserved[:2] != used[:2]  # not drawn as a GPU a VM uses
    assert "reserved for rag-2" in reserved[2] and "used by" not in reserved[2]
    legend = [r for r in root.iter(f"{SVG}rect") if (r.get("fill"), r.get("stroke")) == reserved[:2]]
    assert len(legend) == 2  # the GPU and its legend swatch


# ------------------------------------------------------------------ 6: every failing vCenter on the Health card


def test_the_health_card_names_every_failing_vcenter(viewer, demo, client):  # noqa: F811
    for name in ("nohost", "unreach"):
        vc = factories.VCenterFactory(name=name)
        VCenter.objects.filter(pk=vc.pk).update(
            last_sync_status=SyncStatus.FAILED, last_error=f"https://{name}.example.com/sdk: refused",
            inventory_stale=True,
        )  # fmt: skip
    html = text(viewer.get("/"))
    card = html[html.index('data-check="inventory"') :].split("</ul>")[0]
    assert "vCenter nohost: last sync failed" in card and "vCenter unreach: last sync failed" in card
    assert "2 stale vCenters" in card
    check = client.get("/healthz").json()["checks"]["inventory"]
    assert "nohost" in check["detail"] and "unreach" in check["detail"] and check["stale_vcenters"] == 2
    assert "example.com" not in json.dumps(check)  # anonymous: never the sync's error


# ------------------------------------------------------------------ 7: bad filter and sort values


def test_a_bad_sort_on_the_cluster_page_is_a_400_like_a_bad_filter(viewer, demo):  # noqa: F811
    cluster = Cluster.objects.get(name="pcie-cluster")
    for headers in ({}, {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "hosts-table"}):
        response = viewer.get(f"/clusters/{cluster.pk}/", {"sort": "bogus"}, **headers)
        assert response.status_code == 400
        assert "The filter is not valid (sort: bogus is not a column to sort by (one of name," in text(response)
        assert "esx-l40s-01.lab.local" not in text(response)
    assert viewer.get(f"/clusters/{cluster.pk}/", {"sort": "-gpus_free"}).status_code == 200


def test_the_sync_history_offers_and_takes_only_statuses_a_run_can_have(viewer, demo):  # noqa: F811
    html = text(viewer.get("/syncs/"))
    select = html[html.index('name="status"') :].split("</select>")[0]
    assert "Never synced" not in select and "Success" in select and "Queued" in select
    never = viewer.get("/syncs/", {"status": "never"})
    assert never.status_code == 400 and "The filter is not valid (status:" in text(never)
    bad_sort = viewer.get("/syncs/", {"sort": "bogus"})
    assert bad_sort.status_code == 400 and "sort: bogus is not a column to sort by" in text(bad_sort)


# ------------------------------------------------------------------ 8: /clusters/ is a list of clusters


def test_the_cluster_list_links_every_cluster_with_its_vcenter_and_counts(viewer, demo):  # noqa: F811
    response = viewer.get("/clusters/")
    html = text(response)
    assert response.status_code == 200
    assert "<title>Clusters · GPU Placement Advisor</title>" in html and "<h1>Clusters</h1>" in html
    rows = re.findall(r"<tr[^>]*>\s*<td>(.*?)</tr>", html[html.index('id="clusters-table"') :], re.S)
    assert len(rows) == Cluster.objects.count() >= 2
    for cluster in Cluster.objects.all():
        row = next(r for r in rows if f'href="/clusters/{cluster.pk}/"' in r)
        hosts = Host.objects.filter(cluster=cluster, stale=False)
        gpus = sum(h.gpus.filter(stale=False).count() for h in hosts)
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", "<td>" + row, re.S)]
        assert cells[0] == cluster.name and cells[1] == "demo-lab"
        assert cells[2] == str(hosts.count()) and cells[4] == str(gpus)
    assert 'aria-current="page">Overview' in html  # the navigation keeps clusters under the overview

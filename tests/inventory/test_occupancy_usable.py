"""Free means "a plan can use it": idle GPUs on a host in maintenance, disconnected or not responding, and GPUs
whose graphics type takes no compute VM, are counted apart as unavailable (overview, clusters, host API, filter);
a vGPU mode vCenter does not report is inferred mixed-size when the GPU's vGPUs have two sizes; a GPU held by a VM
that is not running says so."""

from __future__ import annotations

import copy
import json
import re

import pytest

from inventory import occupancy, services
from inventory.exchange import snapshot_from_document
from inventory.models import Gpu, GraphicsType, Host, VgpuMode, VirtualMachine
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

HGX, L40S, A100, NVL, A30 = (
    "esx-hgx-01.lab.local",
    "esx-l40s-01.lab.local",
    "esx-a100-01.lab.local",
    "esx-h100nvl-01.lab.local",
    "esx-a30-01.lab.local",
)


def counts(name: str) -> dict:
    host = occupancy.annotate_gpu_counts(Host.objects.filter(name=name)).get()
    return {k: getattr(host, f"gpus_{k}", None) for k in ("total", "used", "reserved", "free", "unavailable")}


def unavailable_hosts() -> dict[str, dict]:
    """The trial's D3: maintenance, disconnected, not responding."""
    before = {name: counts(name) for name in (HGX, A100, NVL)}
    Host.objects.filter(name=NVL).update(maintenance_mode=True)
    Host.objects.filter(name=A100).update(connection_state="disconnected")
    Host.objects.filter(name=HGX).update(connection_state="notResponding")
    return before


# ------------------------------------------------------------------ D3: unavailable hosts


def test_idle_gpus_on_unavailable_hosts_are_unavailable_not_free_in_host_counts(demo):
    before = unavailable_hosts()
    assert before[HGX]["free"] > 0 and before[NVL]["free"] > 0
    for name, was in before.items():
        now = counts(name)
        assert now["free"] == 0
        assert now["unavailable"] == was["free"]
        assert (now["used"], now["reserved"], now["total"]) == (was["used"], was["reserved"], was["total"])
        assert now["total"] == now["used"] + now["reserved"] + now["free"] + now["unavailable"]
    assert counts(L40S)["unavailable"] == 0 and counts(L40S)["free"] > 0


def test_overview_totals_and_cluster_rows_count_unavailable_apart(demo):
    free_before = occupancy.overview_totals(occupancy.cluster_summaries())["free"]
    before = unavailable_hosts()
    summaries = occupancy.cluster_summaries()
    totals = occupancy.overview_totals(summaries)
    idle_lost = sum(b["free"] for b in before.values())
    assert totals["free"] == free_before - idle_lost
    assert totals["unavailable"] == idle_lost
    assert totals["gpus"] == 20
    assert totals["gpus"] == sum(totals[k] for k in ("free", "used", "partial", "reserved", "unavailable"))
    # every unavailable host is a host with a warning
    assert totals["hosts_with_warnings"] >= 3
    h100_rows = [r for s in summaries for r in s.rows if "H100" in r.model]
    assert h100_rows and all(r.free == 0 and r.unavailable > 0 for r in h100_rows)
    # the free figure is what the host counts say
    assert totals["free"] == sum(counts(h.name)["free"] for h in Host.objects.filter(stale=False))
    assert totals["unavailable"] == sum(counts(h.name)["unavailable"] for h in Host.objects.filter(stale=False))


def test_the_host_api_and_its_free_filter_agree_with_plans(demo, api):
    unavailable_hosts()
    for params in ({}, {"ordering": "-gpus_free"}):  # counted per page, and annotated for ordering
        rows = {h["name"]: h for h in api.get("/api/hosts/", params).json()["results"]}
        assert rows[HGX]["gpus_free"] == 0 and rows[HGX]["gpus_unavailable"] == counts(HGX)["unavailable"] > 0
        assert rows[NVL]["gpus_free"] == 0 and rows[NVL]["gpus_unavailable"] > 0
        assert rows[L40S]["gpus_free"] == counts(L40S)["free"] > 0 and rows[L40S]["gpus_unavailable"] == 0
    one = api.get(f"/api/hosts/{Host.objects.get(name=A100).pk}/").json()
    assert one["gpus_free"] == 0 and one["gpus_unavailable"] == counts(A100)["unavailable"]
    kept = {h["name"] for h in api.get("/api/hosts/", {"min_free_gpus": 1}).json()["results"]}
    assert kept == {L40S, A30}


def test_the_cluster_api_counts_free_and_unavailable_as_its_hosts_do(demo, api):
    unavailable_hosts()
    Gpu.objects.filter(host__name=L40S).order_by("pk").filter(
        pk__in=Gpu.objects.filter(host__name=L40S, consumers__isnull=True).order_by("pk").values("pk")[:1]
    ).update(graphics_type=GraphicsType.SHARED)  # an idle vSGA GPU on an available host
    hosts = api.get("/api/hosts/", {"limit": 100}).json()["results"]
    for params in ({}, {"ordering": "-gpus_free"}):  # counted per page, and annotated for ordering
        for cluster in api.get("/api/clusters/", params).json()["results"]:
            mine = [h for h in hosts if h["cluster"] == cluster["id"]]
            for field in ("gpus_total", "gpus_used", "gpus_reserved", "gpus_free", "gpus_unavailable"):
                assert cluster[field] == sum(h[field] for h in mine), (cluster["name"], field, params)
            assert cluster["gpus_total"] == sum(
                cluster[f"gpus_{k}"] for k in ("used", "reserved", "free", "unavailable")
            )
    assert any(c["gpus_unavailable"] for c in api.get("/api/clusters/").json()["results"])


def test_overview_shows_unavailable_and_lists_unavailable_hosts_under_warnings(demo, page):
    unavailable_hosts()
    html = page.get("/").content.decode()
    totals = occupancy.overview_totals(occupancy.cluster_summaries())
    assert re.search(rf"<strong>{totals['unavailable']}</strong><span>unavailable</span>", html)
    assert '<th class="num">Unavailable</th>' in html
    warnings = html[html.index('id="warning-table"') :]
    for name, state in ((NVL, "in maintenance mode"), (A100, "disconnected"), (HGX, "not responding")):
        row = warnings[warnings.index(f">{name}</a>") :].split("</tr>")[0]
        assert f"The host is {state}: plans do not use it" in row
    clusters = page.get("/clusters/").content.decode()
    assert '<th class="num">Unavailable</th>' in clusters


def test_the_cluster_page_shows_unavailable_and_the_host_row_says_so(demo, page):
    unavailable_hosts()
    cluster = Host.objects.get(name=NVL).cluster
    html = page.get(f"/clusters/{cluster.pk}/").content.decode()
    summary = occupancy.overview_totals(
        occupancy.cluster_summaries(clusters=type(cluster).objects.filter(pk=cluster.pk))
    )
    assert summary["unavailable"] > 0
    assert re.search(rf"<strong>{summary['unavailable']}</strong><span>unavailable</span>", html)
    assert f"({counts(NVL)['unavailable']} unavailable)" in html
    assert 'class="g unavailable"' in html
    filtered = page.get(f"/clusters/{cluster.pk}/", {"min_free_gpus": 1}).content.decode()
    assert NVL not in filtered and L40S in filtered


# ------------------------------------------------------------------ D5: graphics types that take no compute VM


@pytest.mark.parametrize(
    ("graphics_type", "mode"),
    [(GraphicsType.SHARED, "shared"), (GraphicsType.BASIC, "basic"), ("", "unknown")],
)
def test_a_gpu_not_in_direct_or_shared_direct_mode_is_its_own_mode_and_never_free(demo, api, page, graphics_type, mode):
    host = Host.objects.get(name=L40S)
    gpu = Gpu.objects.get(host=host, pci_device__pci_id="0000:98:00.0")
    free_before = counts(L40S)["free"]
    Gpu.objects.filter(pk=gpu.pk).update(graphics_type=graphics_type, vgpu_mode="")
    assert occupancy.gpu_mode(graphics_type, "", False) == mode

    doc = next(g for g in api.get("/api/gpus/", {"host": host.pk}).json()["results"] if g["id"] == gpu.pk)
    assert (doc["mode"], doc["state"], doc["free_gb"]) == (mode, "unavailable", 0)
    assert [g["id"] for g in api.get("/api/gpus/", {"mode": mode}).json()["results"]] == [gpu.pk]
    assert counts(L40S)["free"] == free_before - 1 and counts(L40S)["unavailable"] == 1

    rows = [r for s in occupancy.cluster_summaries() for r in s.rows if r.model == gpu.model]
    apart = next(r for r in rows if r.mode == mode)
    assert (apart.gpus, apart.free, apart.unavailable) == (1, 0, 1)
    assert apart.mode_label == occupancy.MODE_LABELS[mode] and "Passthrough" not in apart.mode_label
    passthrough = next(r for r in rows if r.mode == "passthrough")
    assert passthrough.gpus == 3

    host_page = page.get(f"/inventory/hosts/{host.pk}/").content.decode()
    row = host_page[host_page.index('data-pci="0000:98:00.0"') :].split("</tr>")[0]
    assert occupancy.MODE_LABELS[mode] in row and ">unavailable<" in row and ">free<" not in row


def test_a_mig_enabled_gpu_in_direct_mode_is_passthrough_as_plans_read_it():
    assert occupancy.gpu_mode(GraphicsType.DIRECT, "", True) == "passthrough"
    assert occupancy.gpu_mode(GraphicsType.SHARED_DIRECT, "", True) == VgpuMode.MIG
    assert occupancy.gpu_mode(GraphicsType.SHARED_DIRECT, "", False) == VgpuMode.SAME_SIZE


def test_the_api_schema_lists_every_mode_and_state(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    gpu = schema["components"]["schemas"]["Gpu"]["properties"]
    text = json.dumps(gpu["mode"]) + json.dumps(schema["components"]["schemas"])
    for mode, _ in occupancy.MODE_CHOICES:
        assert f'"{mode}"' in text
    assert '"unavailable"' in text and "vm_power_state" in json.dumps(schema["components"]["schemas"])


# ------------------------------------------------------------------ D7: vGPU mode unknown, vGPUs of two sizes


def edge_document(*, vgpu_mode: str | None) -> dict:
    doc = json.loads((LABS / "edge.json").read_text())
    host = next(h for h in doc["hosts"] if h["name"] == "esx-standalone-01.lab.local")
    gpu = next(g for g in host["gpus"] if g["pci_id"] == "0000:41:00.0")
    gpu["vgpu_mode"] = vgpu_mode
    return doc


def sync_edge(doc: dict) -> Gpu:
    vcenter, _ = services.import_inventory(document=copy.deepcopy(doc), vcenter_name="edge")
    services.apply_snapshot(vcenter=vcenter, snapshot=snapshot_from_document(doc))
    return Gpu.objects.get(host__name="esx-standalone-01.lab.local", pci_device__pci_id="0000:41:00.0")


def test_an_unknown_mode_with_vgpus_of_two_sizes_is_stored_mixed_size_and_said_inferred(api):
    gpu = sync_edge(edge_document(vgpu_mode=None))
    assert gpu.vgpu_mode == VgpuMode.MIXED_SIZE and gpu.health == "ok"
    occ = occupancy.gpu_occupancy(gpus=Gpu.objects.filter(pk=gpu.pk))[0]
    assert occ.mode == VgpuMode.MIXED_SIZE and occ.mode_label == "vGPU mixed-size (inferred)"
    assert occ.siloed_gb == 0 and occ.locked_profile == ""
    row = next(r for s in occupancy.cluster_summaries() for r in s.rows if r.inferred)
    assert row.mode_label == "vGPU mixed-size (inferred)" and row.siloed_gb == 0
    doc = api.get(f"/api/gpus/{gpu.pk}/").json()
    assert (doc["mode"], doc["vgpu_mode"], doc["mode_inferred"]) == ("mixedSize", "mixedSize", True)

    from placement.selectors import fabric_snapshot

    fabric = fabric_snapshot(host_ids=[gpu.host_id], use_cache=False)
    engine_gpu = next(g for h in fabric.hosts for g in h.gpus if g.pci_id == "0000:41:00.0")
    assert engine_gpu.vgpu_mode == VgpuMode.MIXED_SIZE


def test_a_reported_mode_or_one_size_is_not_inferred(api):
    gpu = sync_edge(edge_document(vgpu_mode="mixedSize"))
    assert gpu.vgpu_mode == VgpuMode.MIXED_SIZE
    assert api.get(f"/api/gpus/{gpu.pk}/").json()["mode_inferred"] is False
    doc = edge_document(vgpu_mode=None)
    host = next(h for h in doc["hosts"] if h["name"] == "esx-standalone-01.lab.local")
    gpu_doc = next(g for g in host["gpus"] if g["pci_id"] == "0000:41:00.0")
    for consumer in gpu_doc["consumers"]:
        consumer["profile"] = "grid_a100d-20c"
    for vm in doc.get("vms", []):
        for dev in vm.get("devices", []):
            if dev.get("profile") == "grid_a100d-40c":
                dev["profile"] = "grid_a100d-20c"
    Gpu.objects.all().delete()
    gpu = sync_edge(doc)
    assert gpu.vgpu_mode == ""
    assert occupancy.gpu_occupancy(gpus=Gpu.objects.filter(pk=gpu.pk))[0].mode_label == "vGPU same-size"


# ------------------------------------------------------------------ L4: VMs that hold a GPU without running


def test_the_host_page_and_the_api_say_a_holding_vm_is_not_running(demo, api, page):
    host = Host.objects.get(name=NVL)
    vms = list(VirtualMachine.objects.filter(host=host, gpu_consumers__isnull=False).distinct())
    assert vms
    VirtualMachine.objects.filter(pk=vms[0].pk).update(power_state="poweredOff")
    html = page.get(f"/inventory/hosts/{host.pk}/").content.decode()
    assert f'<bdi>{vms[0].name}</bdi> <span class="power-note">(powered off)</span>' in html
    consumers = [c for g in api.get("/api/gpus/", {"host": host.pk}).json()["results"] for c in g["consumers"]]
    mine = [c for c in consumers if c["vm_name"] == vms[0].name]
    assert mine and all(c["vm_power_state"] == "poweredOff" for c in mine)
    VirtualMachine.objects.filter(pk=vms[0].pk).update(power_state="suspended")
    assert "(suspended)</span>" in page.get(f"/inventory/hosts/{host.pk}/").content.decode()
    VirtualMachine.objects.filter(pk=vms[0].pk).update(power_state="poweredOn")
    assert 'class="power-note"' not in page.get(f"/inventory/hosts/{host.pk}/").content.decode()

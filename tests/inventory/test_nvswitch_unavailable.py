"""Passthrough and MIG GPUs on an NVSwitch (HGX) board: vSphere places only time-sliced vGPU there (DOMAIN 3.7) and
the engine's HgxRules rejects every plan that could use them, so their idle capacity is *unavailable* with that
reason (overview cards and rows, cluster and host pages, the API's counts and ``state=`` filter), and the host page
carries a finding. The trial (report C, finding 2) counted 308 such H100 SXM GPUs as free."""

from __future__ import annotations

import importlib.util
import json

import pytest

from gpucatalog.catalog import nvswitch_refusal
from inventory import fabric, occupancy, services
from inventory.models import Gpu, GraphicsType, Host, VgpuMode
from placement import services as placement_services
from placement.selectors import fabric_snapshot
from tests.inventory.test_occupancy_usable import counts
from tests.vcsim import LABS, REPO

pytestmark = pytest.mark.django_db


def _load_scale_lab():
    spec = importlib.util.spec_from_file_location("make_scale_lab", REPO / "tools" / "vcsim" / "make_scale_lab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scale_lab = _load_scale_lab()

HGX, L40S = "esx-hgx-01.lab.local", "esx-l40s-01.lab.local"
FINDING = "vSphere places only time-sliced vGPU on NVSwitch boards: 3 GPUs in passthrough/MIG mode cannot be used"


def hgx_idle_to_passthrough_and_mig() -> tuple[list[int], list[int]]:
    """Two idle GPUs of the HGX host to passthrough and one to MIG (as a sync would store them), then the fabric
    rebuilt as a sync does, so the planner sees the new modes too."""
    idle = [o.gpu_id for o in occupancy.gpu_occupancy(gpus=Gpu.objects.filter(host__name=HGX)) if o.state == "free"]
    assert len(idle) >= 3
    direct, mig = idle[:2], idle[2:3]
    Gpu.objects.filter(pk__in=direct).update(graphics_type=GraphicsType.DIRECT, vgpu_mode="", mig_enabled=False)
    Gpu.objects.filter(pk__in=mig).update(
        graphics_type=GraphicsType.SHARED_DIRECT, vgpu_mode=VgpuMode.MIG, mig_enabled=True
    )
    fabric.rebuild_fabrics(hosts=Host.objects.filter(name=HGX))
    return direct, mig


def test_the_inventory_rule_is_the_engine_rule_for_every_mode():
    """Each mode is refused on an NVSwitch board exactly when HgxRules refuses the request kind that mode takes."""
    takes = {"passthrough": (True, False), VgpuMode.MIG: (False, True)}
    for mode, _ in occupancy.MODE_CHOICES:
        whole_gpu, mig = takes.get(mode, (False, False))
        assert occupancy.nvswitch_refused(mode) == bool(nvswitch_refusal(whole_gpu=whole_gpu, mig=mig)), mode
    assert {m for m, _ in occupancy.MODE_CHOICES if occupancy.nvswitch_refused(m)} == {"passthrough", VgpuMode.MIG}


def test_the_inventory_names_the_nvswitch_hosts_the_planner_does(demo):
    """``nvswitch_hosts`` (an active NVSwitch board domain) and the engine's ``HostState.nvswitch`` (a partition of
    two or more GPUs) agree, on the demo and edge labs and on a scale lab's HGX hosts in every mode."""
    services.import_inventory(document=json.loads((LABS / "edge.json").read_text()), vcenter_name="edge")
    services.import_inventory(document=scale_lab.make_scale_lab(1, 12, 8, 40, 5), vcenter_name="scale")
    services.import_inventory(document=scale_lab.make_scale_lab(1, 4, 4, 10, 5), vcenter_name="pcie")
    planner = {h.host_id for h in fabric_snapshot().hosts if h.nvswitch}
    inventory = set(Host.objects.filter(pk__in=occupancy.nvswitch_hosts()).values_list("pk", flat=True))
    assert planner == inventory
    assert len(inventory) == 1 + 1 + 12  # demo's and edge's HGX hosts, every 8-GPU scale host; no PCIe host


def test_idle_passthrough_and_mig_gpus_on_an_nvswitch_board_are_unavailable_not_free(demo):
    before = counts(HGX)
    l40s_before = counts(L40S)
    assert list(Host.objects.filter(pk__in=occupancy.nvswitch_hosts()).values_list("name", flat=True)) == [HGX]
    direct, mig = hgx_idle_to_passthrough_and_mig()
    now = counts(HGX)
    assert now["free"] == before["free"] - 3 and now["unavailable"] == before["unavailable"] + 3
    assert now["total"] == now["used"] + now["reserved"] + now["free"] + now["unavailable"]
    assert counts(L40S) == l40s_before  # passthrough on a PCIe host stays free
    occ = {o.gpu_id: o for o in occupancy.gpu_occupancy(gpus=Gpu.objects.filter(host__name=HGX))}
    for pk in direct + mig:
        assert occ[pk].state == "unavailable"
        assert occ[pk].unavailable_reason == occupancy.NVSWITCH_UNAVAILABLE
        assert "NVSwitch" in occ[pk].title
    assert all(o.unavailable_reason == "" for pk, o in occ.items() if pk not in direct + mig)


def test_the_planner_rejects_what_the_inventory_counts_unavailable(demo):
    direct, mig = hgx_idle_to_passthrough_and_mig()
    pcis = set(Gpu.objects.filter(pk__in=direct + mig).values_list("pci_device__pci_id", flat=True))
    for request in (
        placement_services.build_request(gpus_per_vm=1, consumption="passthrough"),
        placement_services.build_request(gpus_per_vm=1, consumption="mig", profile="nvidia_h100xm-3-40c"),
    ):
        result = placement_services.plan_cluster(request=request, clusters=["hgx-cluster"])
        assert not any(g in pcis for c in result.candidates for g in (x.pci_id for x in c.gpus)), request
        (rejection,) = [r for r in result.rejected if r.host == HGX]
        assert any("NVSwitch board" in reason for reason in rejection.reasons)


def test_overview_rows_and_cards_count_them_unavailable_with_the_reason(demo, page):
    free_before = occupancy.overview_totals(occupancy.cluster_summaries())["free"]
    hgx_idle_to_passthrough_and_mig()
    summaries = occupancy.cluster_summaries()
    totals = occupancy.overview_totals(summaries)
    assert totals["free"] == free_before - 3 and totals["gpus"] == sum(
        totals[k] for k in ("free", "used", "partial", "reserved", "unavailable")
    )
    hgx_rows = {r.mode: r for s in summaries if s.name == "hgx-cluster" for r in s.rows}
    assert (hgx_rows["passthrough"].free, hgx_rows["passthrough"].unavailable) == (0, 2)
    assert (hgx_rows[VgpuMode.MIG].free, hgx_rows[VgpuMode.MIG].unavailable) == (0, 1)
    assert hgx_rows["passthrough"].unavailable_title == occupancy.NVSWITCH_UNAVAILABLE
    html = page.get("/").content.decode()
    assert f'title="{occupancy.NVSWITCH_UNAVAILABLE}">2</span>' in html
    assert "passthrough or MIG mode on an NVSwitch (HGX) board" in html  # the card's title
    cluster = Host.objects.get(name=HGX).cluster
    html = page.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "passthrough or MIG mode on an NVSwitch (HGX) board" in html


def test_partly_held_mig_gpus_on_an_nvswitch_board_are_in_use_with_no_gb_left(demo):
    """A MIG GPU there that a VM holds is in use: the room left on it is not capacity a plan can use, so it is not
    partly used either (the overview said '1 (0 GB left)')."""
    hgx_idle_to_passthrough_and_mig()
    held = Gpu.objects.filter(host__name=HGX, consumers__isnull=False).order_by("pk").first()
    held.consumers.update(kind="mig", profile="nvidia_h100xm-3-40c")
    Gpu.objects.filter(pk=held.pk).update(vgpu_mode=VgpuMode.MIG, mig_enabled=True)
    row = next(
        r
        for s in occupancy.cluster_summaries()
        if s.name == "hgx-cluster"
        for r in s.rows
        if r.mode == "multiInstanceGpu"
    )
    assert row.used == 1 and row.partial == 0 and row.free_gb_on_partial == 0


def test_the_api_counts_and_state_filter_agree(demo, api):
    direct, mig = hgx_idle_to_passthrough_and_mig()
    host = Host.objects.get(name=HGX)
    for params in ({}, {"ordering": "-gpus_free"}):  # counted per page, and annotated for ordering
        row = next(h for h in api.get("/api/hosts/", params).json()["results"] if h["name"] == HGX)
        assert (row["gpus_free"], row["gpus_unavailable"]) == (counts(HGX)["free"], counts(HGX)["unavailable"])
        cluster = next(c for c in api.get("/api/clusters/", params).json()["results"] if c["id"] == host.cluster_id)
        assert cluster["gpus_unavailable"] == 3 and cluster["gpus_free"] == counts(HGX)["free"]
    unavailable = {g["id"] for g in api.get("/api/gpus/", {"host": host.pk, "state": "unavailable"}).json()["results"]}
    free = {g["id"] for g in api.get("/api/gpus/", {"host": host.pk, "state": "free"}).json()["results"]}
    assert unavailable == set(direct + mig) and not free & unavailable
    kept = {h["name"] for h in api.get("/api/hosts/", {"min_free_gpus": counts(HGX)["free"] + 1}).json()["results"]}
    assert HGX not in kept


def test_the_host_page_and_fabric_api_carry_a_finding(demo, page, api):
    host = Host.objects.get(name=HGX)
    assert fabric.nvswitch_mode_finding(host) is None
    assert FINDING not in page.get(f"/inventory/hosts/{host.pk}/").content.decode()
    direct, mig = hgx_idle_to_passthrough_and_mig()
    finding = fabric.nvswitch_mode_finding(host)
    assert finding["severity"] == "warning" and finding["message"].startswith(FINDING)
    assert finding["gpus"] == sorted(
        Gpu.objects.filter(pk__in=direct + mig).values_list("pci_device__pci_id", flat=True)
    )
    html = page.get(f"/inventory/hosts/{host.pk}/").content.decode()
    assert FINDING in html
    assert f'title="{occupancy.NVSWITCH_UNAVAILABLE}"' in html  # each such GPU's state badge says why
    codes = [f["code"] for f in api.get(f"/api/hosts/{host.pk}/topology/").json()["findings"]]
    assert fabric.NVSWITCH_MODE_CODE in codes
    # a passthrough PCIe host gets no such finding
    assert fabric.nvswitch_mode_finding(Host.objects.get(name=L40S)) is None


def test_room_no_plan_can_use_is_no_gb_left_on_the_host_page_and_gpu_list_either(demo):
    """Trial H #4: the overview said '2 (0 GB left)' for partly used MIG GPUs on an NVSwitch board, the host page
    '(110 GB left)' and the GPU list 'Free GB 40'; a host not responding likewise."""
    hgx_idle_to_passthrough_and_mig()
    held = Gpu.objects.filter(host__name=HGX, consumers__isnull=False).order_by("pk").first()
    held.consumers.update(kind="mig", profile="nvidia_h100xm-3-40c")
    Gpu.objects.filter(pk=held.pk).update(vgpu_mode=VgpuMode.MIG, mig_enabled=True)
    details = occupancy.host_gpu_details(host=Host.objects.get(name=HGX))
    mig = next(g for g in details if g.pci_id == held.pci_device.pci_id)
    assert mig.state == "used" and mig.free_gb == 0 and "GB free of" not in mig.title
    assert occupancy.summarize(details)["free_gb"] == 0
    a100 = Host.objects.get(name="esx-a100-01.lab.local")
    before = occupancy.summarize(occupancy.host_gpu_details(host=a100))
    Host.objects.filter(pk=a100.pk).update(connection_state="notResponding")
    after = occupancy.summarize(occupancy.host_gpu_details(host=Host.objects.get(pk=a100.pk)))
    assert before["free_gb"] > 0 and before["partial"] > 0
    assert (after["free_gb"], after["partial"], after["used"]) == (0, 0, before["used"] + before["partial"])

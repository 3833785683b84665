"""Stored GPU fabrics: links, resource domains and findings built at every sync, nvidia-smi imports kept
across re-syncs, stable domain ids, no writes on an unchanged re-sync, and the per-host SVG."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from itertools import combinations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from gpucatalog.catalog import HGX8_PARTITIONS_BY_MODULE
from inventory import fabric, services
from inventory.models import FabricLink, Gpu, Host, ResourceDomain, SmiCapture
from inventory.topology.pcie_tree import pci_sort_key
from tests.vcsim import LABS

HGX, L40S, A100, NVL = (
    "esx-hgx-01.lab.local",
    "esx-l40s-01.lab.local",
    "esx-a100-01.lab.local",
    "esx-h100nvl-01.lab.local",
)
FABRIC_TABLES = ("inventory_fabriclink", "inventory_resourcedomain", "inventory_host", "inventory_smicapture")
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")

# Hand-written `nvidia-smi topo -m` of the H100 NVL host: two bridged pairs, one per socket.
NVL_CAPTURE = """\
$ nvidia-smi topo -m
        GPU0    GPU1    GPU2    GPU3    CPU Affinity    NUMA Affinity
GPU0     X      NV12    SYS     SYS     0-63            0
GPU1    NV12     X      SYS     SYS     0-63            0
GPU2    SYS     SYS      X      NV12    64-127          1
GPU3    SYS     SYS     NV12     X      64-127          1

Legend:

  X    = Self
  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes (e.g., QPI/UPI)
  NV#  = Connection traversing a bonded set of # NVLinks
"""


def demo() -> dict:
    return json.loads((LABS / "demo.json").read_text())


def lab_host(name: str) -> dict:
    return next(h for h in demo()["hosts"] if h["name"] == name)


def bus_order(pci_ids) -> list[str]:
    return sorted(pci_ids, key=pci_sort_key)


def links_of(host: Host) -> dict[tuple[str, str], FabricLink]:
    result = {}
    for link in FabricLink.objects.filter(host=host).select_related("gpu_a__pci_device", "gpu_b__pci_device"):
        assert link.gpu_a_id < link.gpu_b_id
        result[tuple(bus_order([link.gpu_a.pci_device.pci_id, link.gpu_b.pci_device.pci_id]))] = link
    return result


def kinds_of(host: Host) -> dict[tuple[str, str], str]:
    return {pair: link.kind for pair, link in links_of(host).items()}


def domains_of(host: Host, kind: str | None = None, *, active: bool = True) -> list[tuple[str, frozenset[str]]]:
    qs = ResourceDomain.objects.filter(host=host, active=active).prefetch_related("members__pci_device")
    if kind:
        qs = qs.filter(kind=kind)
    return sorted((d.domain_id, frozenset(g.pci_device.pci_id for g in d.members.all())) for d in qs)


def domain_state() -> dict:
    return {
        (d.host.name, d.domain_id): (d.pk, d.kind, d.version, d.active)
        for d in ResourceDomain.objects.select_related("host")
    }


def codes(host: Host) -> list[str]:
    host.refresh_from_db()
    return [f["code"] for f in host.fabric_findings]


def fabric_writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(WRITE_VERBS) and any(t in q["sql"] for t in FABRIC_TABLES)
    ]


# --------------------------------------------------------------------------- the vcsim demo lab


@pytest.mark.django_db(transaction=True)
def test_demo_lab_links_and_domains_match_the_lab_file(lab_vcenter, tmp_path):
    services.sync_vcenter(vcenter=lab_vcenter)
    hosts = {h.name: h for h in Host.objects.filter(vcenter=lab_vcenter)}

    # Every pair of live GPUs has exactly one link.
    for host in hosts.values():
        gpus = bus_order(Gpu.objects.filter(host=host, stale=False).values_list("pci_device__pci_id", flat=True))
        assert sorted(links_of(host)) == sorted(combinations(gpus, 2)), host.name

    # HGX H100: NVSwitch all-to-all, one board, Fabric Manager partitions in PCI bus order (vcsim has no
    # module ids) and an info finding saying so.
    hgx = hosts[HGX]
    hgx_gpus = bus_order(g["pci_id"] for g in lab_host(HGX)["gpus"])
    links = links_of(hgx)
    assert len(links) == 28
    assert {(x.kind, x.source) for x in links.values()} == {("NVSWITCH", "platform-catalog")}
    assert all(x.gbps > 100 and x.link_count > 0 for x in links.values())
    assert [m for _, m in domains_of(hgx, "nvswitch-board")] == [frozenset(hgx_gpus)]
    assert not Gpu.objects.filter(host=hgx, module_id__isnull=False).exists()
    by_module = {i + 1: pci for i, pci in enumerate(hgx_gpus)}
    expected = {frozenset(by_module[m] for m in block) for block in HGX8_PARTITIONS_BY_MODULE}
    partitions = [m for _, m in domains_of(hgx, "nvswitch-partition")]
    assert set(partitions) == expected and len(partitions) == 15
    assert Counter(len(p) for p in partitions) == {8: 1, 4: 2, 2: 4, 1: 8}
    assert {frozenset(hgx_gpus[:4]), frozenset(hgx_gpus[4:])} <= set(partitions)
    hgx.refresh_from_db()
    assumed = [f for f in hgx.fabric_findings if f["code"] == "module-id-assumed"]
    assert len(assumed) == 1 and assumed[0]["severity"] == "info" and "PCI bus order" in assumed[0]["message"]
    assert {m for _, m in domains_of(hgx, "numa-node")} == {frozenset(hgx_gpus[:4]), frozenset(hgx_gpus[4:])}

    # L40S, 2 sockets: 18:00 and 19:00 sit under the PEX switch 16:00 (root port 15:01, socket 0); 38:00 is
    # on root port 37:01 of socket 0; 98:00 on socket 1.
    l40s = hosts[L40S]
    assert kinds_of(l40s) == {
        ("0000:18:00.0", "0000:19:00.0"): "PIX",
        ("0000:18:00.0", "0000:38:00.0"): "NODE",
        ("0000:19:00.0", "0000:38:00.0"): "NODE",
        ("0000:18:00.0", "0000:98:00.0"): "SYS",
        ("0000:19:00.0", "0000:98:00.0"): "SYS",
        ("0000:38:00.0", "0000:98:00.0"): "SYS",
    }
    assert {x.source for x in links_of(l40s).values()} == {"pci-tree"}
    assert [m for _, m in domains_of(l40s, "pcie-switch")] == [frozenset({"0000:18:00.0", "0000:19:00.0"})]
    assert not domains_of(l40s, "nvlink-pair") and not domains_of(l40s, "nvswitch-board")

    # A100 host: two GPUs on different root ports of one socket.
    assert kinds_of(hosts[A100]) == {("0000:41:00.0", "0000:c1:00.0"): "NODE"}

    # H100 NVL before any capture: PIX pairs, SYS across, and the NVLink-missing warning per pair.
    nvl = hosts[NVL]
    pairs = [("0000:18:00.0", "0000:19:00.0"), ("0000:9a:00.0", "0000:9b:00.0")]
    before = kinds_of(nvl)
    assert {before[p] for p in pairs} == {"PIX"}
    assert {k for p, k in before.items() if p not in pairs} == {"SYS"}
    assert codes(nvl).count("nvlink-missing") == 2
    assert not domains_of(nvl, "nvlink-pair")

    # Import the capture through the command: NVLink pairs, nvlink-pair domains, no warning.
    capture = tmp_path / "nvl.txt"
    capture.write_text(NVL_CAPTURE)
    call_command("topology", "import-smi", str(capture), "--host", NVL)
    after = links_of(nvl)
    assert {(after[p].kind, after[p].link_count, after[p].source) for p in pairs} == {("NVLINK", 12, "smi-import")}
    assert all(after[p].gbps > 64 for p in pairs), "NVLink beats PCIe Gen5 x16"
    assert {after[p].kind for p in after if p not in pairs} == {"SYS"}
    assert "nvlink-missing" not in codes(nvl)
    assert {m for _, m in domains_of(nvl, "nvlink-pair")} == {frozenset(p) for p in pairs}
    assert SmiCapture.objects.filter(host=nvl).count() == 1

    # A further re-sync rebuilds from the stored capture: the NVLink links stay.
    services.sync_vcenter(vcenter=lab_vcenter)
    again = links_of(nvl)
    assert {(again[p].kind, again[p].source) for p in pairs} == {("NVLINK", "smi-import")}
    assert "nvlink-missing" not in codes(nvl)
    assert len(domains_of(nvl, "nvlink-pair")) == 2


@pytest.mark.django_db(transaction=True)
def test_domain_ids_are_identical_across_two_syncs(lab_vcenter):
    services.sync_vcenter(vcenter=lab_vcenter)
    first = domain_state()
    assert first and all(active for *_, active in first.values())
    services.sync_vcenter(vcenter=lab_vcenter)
    assert domain_state() == first


@pytest.mark.django_db(transaction=True)
def test_resync_writes_no_rows_on_fabric_tables(lab_vcenter, tmp_path):
    services.sync_vcenter(vcenter=lab_vcenter)
    capture = tmp_path / "nvl.txt"
    capture.write_text(NVL_CAPTURE)
    call_command("topology", "import-smi", str(capture), "--host", NVL)
    with CaptureQueriesContext(connection) as queries:
        run = services.sync_vcenter(vcenter=lab_vcenter)
    assert fabric_writes(queries) == []
    assert not any(v for k, v in run.counts.items() if k.startswith("fabric_"))
    with CaptureQueriesContext(connection) as queries:
        counts = fabric.rebuild_fabrics(hosts=Host.objects.all())
    assert fabric_writes(queries) == [] and not any(counts.values())


# --------------------------------------------------------------------------- imports (no vCenter needed)


@pytest.mark.django_db
def test_domain_ids_survive_a_vm_power_cycle():
    services.import_inventory(document=demo(), vcenter_name="demo")
    before = domain_state()
    links_before = sorted(FabricLink.objects.values_list("pk", "gpu_a", "gpu_b", "kind", "gbps", "source"))

    doc = demo()
    vm = "llama-70b-tp2-a"
    next(v for v in doc["vms"] if v["name"] == vm)["power_state"] = "poweredOff"
    removed = 0
    for host in doc["hosts"]:
        for gpu in host["gpus"]:
            kept = [c for c in gpu["consumers"] if c["vm"] != vm]
            removed += len(gpu["consumers"]) - len(kept)
            gpu["consumers"] = kept
    assert removed == 2
    with CaptureQueriesContext(connection) as queries:
        services.import_inventory(document=doc, vcenter_name="demo")
    assert fabric_writes(queries) == []
    assert domain_state() == before

    services.import_inventory(document=demo(), vcenter_name="demo")
    assert domain_state() == before
    assert sorted(FabricLink.objects.values_list("pk", "gpu_a", "gpu_b", "kind", "gbps", "source")) == links_before


@pytest.mark.django_db
def test_imported_module_ids_drive_the_partitions_without_a_finding():
    services.import_inventory(document=demo(), vcenter_name="demo")
    hgx = Host.objects.get(name=HGX)
    modules = {g["module_id"]: g["pci_id"] for g in lab_host(HGX)["gpus"]}
    expected = {frozenset(modules[m] for m in block) for block in HGX8_PARTITIONS_BY_MODULE}
    assert {m for _, m in domains_of(hgx, "nvswitch-partition")} == expected
    assert "module-id-assumed" not in codes(hgx)


@pytest.mark.django_db
def test_a_domain_whose_members_change_is_versioned_and_the_old_one_kept_inactive():
    services.import_inventory(document=demo(), vcenter_name="demo")
    l40s = Host.objects.get(name=L40S)
    numa0 = {"0000:18:00.0", "0000:19:00.0", "0000:38:00.0"}
    [old_id] = [key for key, members in domains_of(l40s, "numa-node") if members == numa0]

    doc = demo()
    host = next(h for h in doc["hosts"] if h["name"] == L40S)
    host["gpus"] = [g for g in host["gpus"] if g["pci_id"] != "0000:19:00.0"]
    for node in host["numa_nodes"]:
        node["pci_ids"] = [p for p in node["pci_ids"] if p != "0000:19:00.0"]
    services.import_inventory(document=doc, vcenter_name="demo")

    old = ResourceDomain.objects.get(host=l40s, domain_id=old_id)
    assert old.active is False and old.version == 1
    [new_id] = [key for key, members in domains_of(l40s, "numa-node") if members & numa0]
    assert new_id != old_id and dict(domains_of(l40s, "numa-node"))[new_id] == {"0000:18:00.0", "0000:38:00.0"}
    assert ResourceDomain.objects.get(host=l40s, domain_id=new_id).version == 2
    # The PCIe switch now holds one GPU: no switch domain, and no link to the stale GPU.
    assert not domains_of(l40s, "pcie-switch") and len(domains_of(l40s, "pcie-switch", active=False)) == 1
    assert sorted(links_of(l40s)) == [
        ("0000:18:00.0", "0000:38:00.0"),
        ("0000:18:00.0", "0000:98:00.0"),
        ("0000:38:00.0", "0000:98:00.0"),
    ]

    services.import_inventory(document=demo(), vcenter_name="demo")
    assert ResourceDomain.objects.get(host=l40s, domain_id=old_id).active is True
    assert ResourceDomain.objects.get(host=l40s, domain_id=new_id).active is False
    assert len(links_of(l40s)) == 6


@pytest.mark.django_db
def test_rebuild_queries_do_not_grow_with_hosts_or_pairs():
    for name in ("one", "two", "three"):
        services.import_inventory(document=demo(), vcenter_name=name)
    FabricLink.objects.all().delete()
    ResourceDomain.objects.all().delete()
    Host.objects.update(fabric_findings=[])

    def queries_for(hosts) -> int:
        with CaptureQueriesContext(connection) as queries:
            fabric.rebuild_fabrics(hosts=hosts)
        return len(queries.captured_queries)

    few = queries_for(list(Host.objects.filter(vcenter__name="one")))
    many = queries_for(list(Host.objects.exclude(vcenter__name="one")))
    assert many <= few <= 20
    assert FabricLink.objects.count() == 3 * (28 + 6 + 1 + 6 + 1)  # GPU pairs: HGX, L40S, A100, NVL, A30


@pytest.mark.django_db
def test_hardware_for_reflects_the_stored_rows():
    services.import_inventory(document=demo(), vcenter_name="demo")
    hw = fabric.hardware_for(Host.objects.get(name=L40S))
    lab = lab_host(L40S)
    assert [g.pci_id for g in hw.gpus] == bus_order(g["pci_id"] for g in lab["gpus"])
    assert {g.pci_id: g.numa_node for g in hw.gpus} == {g["pci_id"]: g["numa_node"] for g in lab["gpus"]}
    parents = {f.pci_id: f.parent for f in hw.pci}
    assert parents["0000:18:00.0"] == "0000:17:00.0" and parents["0000:15:01.0"] is None
    assert [n.id for n in hw.numa_nodes] == [0, 1] and hw.sockets == 2


@pytest.mark.django_db
def test_a_stored_capture_that_no_longer_fits_is_ignored_with_a_warning():
    services.import_inventory(document=demo(), vcenter_name="demo")
    nvl = Host.objects.get(name=NVL)
    fabric.import_smi_capture(host=nvl, text=NVL_CAPTURE)
    doc = demo()
    host = next(h for h in doc["hosts"] if h["name"] == NVL)
    host["gpus"] = host["gpus"][:3]
    doc["vms"] = [v for v in doc["vms"] if v["name"] != "llama-8b-nvl"]
    for gpu in host["gpus"]:  # the VM is gone from its GPUs too (a consumer naming no listed VM is refused)
        gpu["consumers"] = [c for c in gpu.get("consumers", ()) if c["vm"] != "llama-8b-nvl"]
    services.import_inventory(document=doc, vcenter_name="demo")
    assert "smi-capture-ignored" in codes(nvl)
    assert {x.source for x in links_of(nvl).values()} == {"pci-tree"}


# --------------------------------------------------------------------------- SVG


@pytest.mark.django_db
def test_topology_svg_requires_login(client):
    services.import_inventory(document=demo(), vcenter_name="demo")
    host = Host.objects.get(name=HGX)
    response = client.get(reverse("inventory:host_topology_svg", args=[host.pk]))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_topology_svg_of_every_demo_host_is_well_formed_and_shows_every_gpu(client):
    services.import_inventory(document=demo(), vcenter_name="demo")
    client.force_login(get_user_model().objects.create_user("ops", password="x-Long-Passw0rd"))
    lab = {h["name"]: h for h in demo()["hosts"]}
    assert Host.objects.count() == 5
    for host in Host.objects.all():
        url = reverse("inventory:host_topology_svg", args=[host.pk])
        assert url == f"/inventory/hosts/{host.pk}/topology.svg"
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("image/svg+xml")
        body = response.content.decode()
        root = ET.fromstring(body)  # noqa: S314  # our own output
        assert root.tag.endswith("svg")
        for gpu in lab[host.name]["gpus"]:
            assert gpu["pci_id"] in body, (host.name, gpu["pci_id"])
            for consumer in gpu["consumers"]:
                assert consumer["vm"] in body

        page = client.get(reverse("inventory:host_detail", args=[host.pk]))
        assert page.status_code == 200
        html = page.content.decode()
        assert url in html
        for domain_id, _ in domains_of(host):
            assert domain_id in html


@pytest.mark.django_db
def test_topology_svg_draws_the_gpus_of_a_host_in_maintenance_as_unavailable_not_free(client):
    """Trial J-7: every GPU of a host in maintenance was drawn "free" while the table said unavailable."""
    services.import_inventory(document=demo(), vcenter_name="demo")
    client.force_login(get_user_model().objects.create_user("ops", password="x-Long-Passw0rd"))
    host = Host.objects.get(name=HGX)
    svg = client.get(reverse("inventory:host_topology_svg", args=[host.pk])).content.decode()
    assert ">free</text>" in svg and ">unavailable</text>" not in svg
    Host.objects.filter(pk=host.pk).update(maintenance_mode=True)
    svg = client.get(reverse("inventory:host_topology_svg", args=[host.pk])).content.decode()
    assert ">free</text>" not in svg
    free_before = 5  # the demo HGX host: 5 of its 8 GPUs have no VM
    assert svg.count(">unavailable</text>") == free_before
    assert "unavailable: the host is in maintenance mode" in svg


@pytest.mark.django_db
def test_topology_svg_404_for_unknown_host(client):
    client.force_login(get_user_model().objects.create_user("ops", password="x-Long-Passw0rd"))
    assert client.get(reverse("inventory:host_topology_svg", args=[999999])).status_code == 404


def test_capture_constant_is_a_four_gpu_matrix():
    from inventory.topology.smi import parse_smi_topology

    topo = parse_smi_topology(NVL_CAPTURE)
    assert len(topo.gpus) == 4 and not topo.warnings


@pytest.mark.django_db
def test_the_fabric_hash_covers_the_vgpu_types_vcenter_lists_for_the_host():
    """The placement snapshot is cached under the hash: a sync that changes the host's offered profiles must change
    it, or plans would go on using the old list."""
    services.import_inventory(document=demo(), vcenter_name="demo")
    before = dict(Host.objects.values_list("name", "fabric_hash"))
    doc = demo()
    for gpu in lab_host(HGX)["gpus"]:
        assert "nvidia_h100xm-20c" in gpu["profiles"]
    for host in doc["hosts"]:
        if host["name"] == HGX:
            for gpu in host["gpus"]:
                gpu["profiles"].remove("nvidia_h100xm-20c")
    services.import_inventory(document=doc, vcenter_name="demo")
    after = dict(Host.objects.values_list("name", "fabric_hash"))
    assert after[HGX] != before[HGX]
    assert {n: h for n, h in after.items() if n != HGX} == {n: h for n, h in before.items() if n != HGX}
    services.import_inventory(document=demo(), vcenter_name="demo")
    assert dict(Host.objects.values_list("name", "fabric_hash")) == before

"""The fabric snapshot: same plans as a from-scratch read, and a host changed by a sync, an nvidia-smi import or an
override is planned from its new state while the others come from the process cache."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.legacy_fabric import legacy_fabric
from inventory import fabric as inventory_fabric
from inventory import services as inventory_services
from inventory.models import Host
from placement import selectors, services
from placement.engine.plan import plan
from placement.models import Reservation
from tests.inventory.test_fabric import NVL_CAPTURE
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db
NVL = "esx-h100nvl-01.lab.local"
NVL_PAIR = ("0000:18:00.0", "0000:19:00.0")

REQUESTS = [
    {"gpus_per_vm": 1, "consumption": "passthrough"},
    {"gpus_per_vm": 2, "consumption": "passthrough"},
    {"gpus_per_vm": 4, "consumption": "passthrough"},
    {"gpus_per_vm": 8, "consumption": "passthrough"},
    {"gpus_per_vm": 2, "consumption": "passthrough", "interconnect": "nvlink"},
    {"gpus_per_vm": 1, "consumption": "vgpu", "profile": "grid_a100d-10c"},
    {"gpus_per_vm": 1, "consumption": "vgpu", "profile": "nvidia_h100xm-80c"},
    {"gpus_per_vm": 1, "consumption": "passthrough", "vms": 3, "anti_affinity": True},
]


def demo() -> dict:
    return json.loads((LABS / "demo.json").read_text())


@pytest.fixture
def lab():
    selectors.reset_snapshot_cache()
    inventory_services.import_inventory(document=demo(), vcenter_name="demo")
    yield
    selectors.reset_snapshot_cache()


def plans(fabric) -> list[dict]:
    return [plan(fabric, services.build_request(**r)).to_dict() for r in REQUESTS]


def assert_same_as_cold() -> list[dict]:
    """The process cache, the stored snapshots (what a fresh process reads) and a read of the rows agree."""
    warm = plans(selectors.fabric_snapshot())
    scratch = plans(selectors.fabric_snapshot(use_cache=False))
    assert warm == scratch
    selectors.reset_snapshot_cache()
    assert plans(selectors.fabric_snapshot()) == scratch
    return warm


def test_the_snapshot_gives_the_engine_what_the_old_full_read_gave(lab):
    inventory_services.import_inventory(document=demo(), vcenter_name="second")
    request = services.build_request(gpus_per_vm=2, consumption="passthrough")
    best = services.plan_cluster(request=request).best
    services.accept_candidate(request=request, candidate=best, vm_name="held")
    assert plans(selectors.fabric_snapshot()) == plans(legacy_fabric())
    assert plans(selectors.fabric_snapshot(clusters=["pcie-cluster"])) == plans(
        legacy_fabric(clusters=["pcie-cluster"])
    )


def test_a_warm_plan_reads_no_template_rows(lab):
    selectors.fabric_snapshot()
    before = selectors.snapshot_stats()
    selectors.fabric_snapshot()
    after = selectors.snapshot_stats()
    assert after["template_misses"] == before["template_misses"]
    assert after["template_hits"] - before["template_hits"] == Host.objects.count()


def test_a_fresh_process_reads_the_stored_snapshots(lab):
    from placement.models import HostSnapshot

    first = plans(selectors.fabric_snapshot())
    assert HostSnapshot.objects.count() == Host.objects.count()
    selectors.reset_snapshot_cache()  # what a new process starts with
    with CaptureQueriesContext(connection) as queries:
        fabric = selectors.fabric_snapshot()
    assert not any("inventory_fabriclink" in q["sql"] for q in queries.captured_queries)
    assert selectors.snapshot_stats()["stored_hits"] == Host.objects.count()
    assert plans(fabric) == first
    # A snapshot stored under an old hash is not used.
    HostSnapshot.objects.update(fabric_hash="old")
    selectors.reset_snapshot_cache()
    assert plans(selectors.fabric_snapshot()) == first
    assert selectors.snapshot_stats()["stored_hits"] == 0
    assert set(HostSnapshot.objects.values_list("fabric_hash", flat=True)) == set(
        Host.objects.values_list("fabric_hash", flat=True)
    )


def test_a_snapshot_stored_by_an_older_codec_is_rebuilt_and_stored_again(lab):
    from placement import snapshot_codec
    from placement.models import HostSnapshot

    first = plans(selectors.fabric_snapshot())
    for row in HostSnapshot.objects.all():
        row.data = {**row.data, "v": snapshot_codec.VERSION - 1}
        row.save(update_fields=["data"])
    selectors.reset_snapshot_cache()
    assert plans(selectors.fabric_snapshot()) == first
    assert selectors.snapshot_stats()["stored_hits"] == 0
    assert {d["v"] for d in HostSnapshot.objects.values_list("data", flat=True)} == {snapshot_codec.VERSION}


def test_hosts_of_one_type_share_one_stored_and_decoded_shape(lab):
    """Links, partitions and topology are stored once per host type and a fresh process reads and decodes each once:
    the hosts that share one get the very same objects (at 1,000 hosts, parsing every host's copy of its topology
    was about half of the first plan's snapshot time)."""
    from placement.models import HostShape, HostSnapshot

    inventory_services.import_inventory(document=demo(), vcenter_name="demo-2")  # each host type twice
    first = plans(selectors.fabric_snapshot())
    shapes = list(HostSnapshot.objects.values_list("shape", flat=True))
    # each demo host twice; the A30 and A100 hosts are wired alike (2 GPUs on their own root ports, one socket)
    assert len(shapes) == Host.objects.count() == 10 and len(set(shapes)) == 4
    assert set(HostShape.objects.values_list("digest", flat=True)) == set(shapes)
    selectors.reset_snapshot_cache()
    with CaptureQueriesContext(connection) as queries:
        fabric = selectors.fabric_snapshot()
    assert sum("placement_hostshape" in q["sql"] for q in queries.captured_queries) == 1
    assert selectors.snapshot_stats()["stored_hits"] == Host.objects.count()
    assert plans(fabric) == first
    by_shape: dict[str, tuple] = {}
    digest_of = dict(HostSnapshot.objects.values_list("host_id", "shape"))
    for host in fabric.hosts:
        seen = by_shape.setdefault(digest_of[host.host_id], (host.topology, host.links, host.partitions))
        assert seen[0][0] is host.topology[0] and seen[1] is host.links and seen[2] is host.partitions


def test_a_snapshot_whose_shape_is_gone_is_rebuilt_and_unused_shapes_are_deleted(lab):
    from placement.models import HostShape, HostSnapshot

    first = plans(selectors.fabric_snapshot())
    HostShape.objects.all().delete()  # what a concurrent store's clean-up could do between two statements
    HostShape.objects.create(digest="0" * 40, data={"links": [], "partitions": [], "topology": None})
    selectors.reset_snapshot_cache()
    assert plans(selectors.fabric_snapshot()) == first
    assert selectors.snapshot_stats()["stored_hits"] == 0
    assert set(HostShape.objects.values_list("digest", flat=True)) == set(
        HostSnapshot.objects.values_list("shape", flat=True)
    )


def test_an_override_is_planned_from_the_new_link(lab):
    nvlink_pair = services.build_request(gpus_per_vm=2, consumption="passthrough", interconnect="nvlink")
    before = services.plan_cluster(request=nvlink_pair)
    nvl = Host.objects.get(name=NVL)
    assert nvl.pk not in {c.host_id for c in before.candidates}
    inventory_fabric.set_link_override(host=nvl, pci_a=NVL_PAIR[0], pci_b=NVL_PAIR[1], kind="NVLINK", link_count=12)
    after = services.plan_cluster(request=nvlink_pair)
    on_nvl = next(c for c in after.candidates if c.host_id == nvl.pk)
    assert {g.pci_id for g in on_nvl.gpus} == set(NVL_PAIR) and on_nvl.bottleneck[0] == "NV12"
    inventory_fabric.clear_link_override(host=nvl)
    assert nvl.pk not in {c.host_id for c in services.plan_cluster(request=nvlink_pair).candidates}
    assert_same_as_cold()


def test_an_smi_import_is_planned_from_the_capture(lab):
    nvl = Host.objects.get(name=NVL)
    request = services.build_request(gpus_per_vm=2, consumption="passthrough", clusters=["pcie-cluster"])
    first = {c.host_id: c for c in services.plan_cluster(request=request).candidates}[nvl.pk]
    inventory_fabric.import_smi_capture(host=nvl, text=NVL_CAPTURE)
    second = {c.host_id: c for c in services.plan_cluster(request=request).candidates}[nvl.pk]
    assert first.bottleneck[0] != "NV12" and second.bottleneck[0] == "NV12"
    assert_same_as_cold()


def test_a_sync_that_removes_a_gpu_and_changes_a_mode_is_planned_from_the_new_state(lab):
    selectors.fabric_snapshot()  # warm
    document = demo()
    l40s = next(h for h in document["hosts"] if h["name"] == "esx-l40s-01.lab.local")
    gone = l40s["gpus"].pop()["pci_id"]
    inventory_services.import_inventory(document=document, vcenter_name="demo")
    host = next(h for h in selectors.fabric_snapshot().hosts if h.name == "esx-l40s-01.lab.local")
    assert gone not in {g.pci_id for g in host.gpus} and len(host.gpus) == 3
    assert_same_as_cold()


def test_a_gpu_saved_by_hand_is_read_again(lab):
    from inventory.models import Gpu

    selectors.fabric_snapshot()
    gpu = Gpu.objects.filter(host__name="esx-l40s-01.lab.local").order_by("pci_device__pci_id").first()
    gpu.graphics_type = "shared"
    gpu.save()
    host = next(h for h in selectors.fabric_snapshot().hosts if h.name == "esx-l40s-01.lab.local")
    assert host.gpus[0].graphics_type == "shared"


def test_unchanged_hosts_keep_their_hash_through_a_resync(lab):
    hashes = dict(Host.objects.values_list("pk", "fabric_hash"))
    assert all(hashes.values())
    inventory_services.import_inventory(document=demo(), vcenter_name="demo")
    assert dict(Host.objects.values_list("pk", "fabric_hash")) == hashes


def test_a_host_whose_inventory_cannot_be_read_is_rejected_with_the_reason(lab):
    rows = selectors.host_rows(scope=selectors.Scope())
    templates = selectors.host_templates(rows=rows)
    odd = rows[0]
    templates[odd.pk] = selectors.HostTemplate((), (), {}, (), problem="two live GPUs share a PCI address")
    fabric = selectors.assemble(rows, templates, {}, {})
    result = plan(fabric, services.build_request(gpus_per_vm=1, consumption="passthrough"))
    rejection = next(r for r in result.rejected if r.host_id == odd.pk)
    assert "two live GPUs share a PCI address" in rejection.reasons[0]
    assert result.candidates


def test_snapshot_queries_do_not_grow_with_the_estate(lab):
    from placement.models import HostSnapshot

    def count() -> tuple[int, int]:
        """Queries of a fresh process's read with nothing stored (it builds and stores), then with all stored."""
        HostSnapshot.objects.all().delete()
        out = []
        for _ in range(2):
            selectors.reset_snapshot_cache()
            with CaptureQueriesContext(connection) as queries:
                selectors.fabric_snapshot()
            out.append(len(queries.captured_queries))
        return out[0], out[1]

    small = count()
    for name in ("b", "c", "d"):
        inventory_services.import_inventory(document=demo(), vcenter_name=name)
    assert count() == small


def test_an_unknown_cluster_names_the_field_and_the_choices(lab):
    with pytest.raises(
        services.RequestError,
        match=r"no cluster with id or name 'nope'; choices: hgx-cluster \(demo\) id \d+, pcie-cluster \(demo\) id \d+",
    ):
        services.plan_cluster(request=services.build_request(gpus_per_vm=1, consumption="passthrough",
                                                             clusters=["nope"]))  # fmt: skip


# --------------------------------------------------------------------------- property: random changes

L40S = "esx-l40s-01.lab.local"
A100 = "esx-a100-01.lab.local"

change = st.one_of(
    st.tuples(st.just("reserve"), st.sampled_from([1, 2]), st.sampled_from(["passthrough", "vgpu"])),
    st.tuples(st.just("release"), st.integers(0, 5), st.none()),
    st.tuples(st.just("expire"), st.integers(0, 5), st.none()),
    st.tuples(st.just("sync-drop-gpu"), st.sampled_from([L40S, NVL]), st.none()),
    st.tuples(st.just("sync-vm-off"), st.sampled_from(["embed-svc", "llama-70b-tp2-a", "chat-a"]), st.none()),
    st.tuples(st.just("sync-maintenance"), st.sampled_from([L40S, A100, NVL]), st.none()),
    st.tuples(st.just("smi"), st.none(), st.none()),
    st.tuples(st.just("override"), st.sampled_from(["NVLINK", "PIX", "SYS"]), st.none()),
)


def apply_change(kind, arg, extra, document: dict) -> None:
    if kind == "reserve":
        profile = "grid_a100d-10c" if extra == "vgpu" else None
        request = services.build_request(gpus_per_vm=1 if profile else arg, consumption=extra, profile=profile)
        try:
            services.reserve(request=request, vm_name=f"p-{Reservation.objects.count()}")
        except services.NoCapacity:
            pass
    elif kind in ("release", "expire"):
        active = list(Reservation.objects.filter(status="active").order_by("pk"))
        if active:
            r = active[arg % len(active)]
            if kind == "release":
                services.release_reservation(reservation=r)
            else:
                Reservation.objects.filter(pk=r.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif kind.startswith("sync-"):
        if kind == "sync-drop-gpu":
            host = next(h for h in document["hosts"] if h["name"] == arg)
            if len(host["gpus"]) > 1:
                host["gpus"].pop()
        elif kind == "sync-vm-off":
            for vm in document["vms"]:
                if vm["name"] == arg:
                    vm["power_state"] = "poweredOff" if vm["power_state"] == "poweredOn" else "poweredOn"
        else:
            host = next(h for h in document["hosts"] if h["name"] == arg)
            host["maintenance"] = not host.get("maintenance", False)
        inventory_services.import_inventory(document=document, vcenter_name="demo")
    elif kind == "smi":
        nvl = Host.objects.get(name=NVL)
        try:
            inventory_fabric.import_smi_capture(host=nvl, text=NVL_CAPTURE)
        except inventory_fabric.TopologyImportError:
            pass  # a GPU of the capture was dropped by an earlier change
    elif kind == "override":
        nvl = Host.objects.get(name=NVL)
        try:
            inventory_fabric.set_link_override(host=nvl, pci_a=NVL_PAIR[0], pci_b=NVL_PAIR[1], kind=arg, link_count=12)
        except inventory_fabric.TopologyImportError:
            pass


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(change, min_size=1, max_size=5))
def test_property_snapshot_equals_a_from_scratch_read_after_random_changes(lab, changes):
    with transaction.atomic():
        document = demo()
        assert_same_as_cold()
        for kind, arg, extra in changes:
            apply_change(kind, arg, extra, document)
            assert_same_as_cold()
        assert plans(selectors.fabric_snapshot()) == plans(legacy_fabric())
        transaction.set_rollback(True)


def test_unchanged_hosts_keep_their_state_objects_between_requests(lab):
    """Hosts whose row, fabric, consumers and usage did not change come back as the same HostState (their GPU
    states keep their cached hashes); a reservation or a host change gives that host a new state, and only it."""
    first = {h.host_id: h for h in selectors.fabric_snapshot().hosts}
    again = {h.host_id: h for h in selectors.fabric_snapshot().hosts}
    assert all(again[pk] is first[pk] for pk in first)

    services.reserve(request=services.build_request(gpus_per_vm=2, consumption="passthrough"), vm_name="llm")
    reserved = Reservation.objects.get(vm_name="llm").host_id
    Host.objects.filter(name="esx-a100-01.lab.local").update(maintenance_mode=True)
    maintenance = Host.objects.get(name="esx-a100-01.lab.local").pk
    after = {h.host_id: h for h in selectors.fabric_snapshot().hosts}
    assert {pk for pk in first if after[pk] is not first[pk]} == {reserved, maintenance}
    assert any(c.vm.endswith("llm") for g in after[reserved].gpus for c in g.consumers)
    assert after[maintenance].maintenance and not first[maintenance].maintenance
    assert_same_as_cold()


def test_a_candidate_says_what_the_inventory_cannot_tell_about_its_gpus_until_a_capture_tells_it(lab):
    """The demo's H100 NVL cards share PCIe switches and vCenter shows no NVLink bridges: the plan ranks the pair
    by what is known (PIX) and says so; once a capture shows NV12 the caution goes and the pair is NVLink."""
    nvl = Host.objects.get(name=NVL)
    request = services.build_request(gpus_per_vm=2, consumption="passthrough", clusters=["pcie-cluster"])
    before = {c.host_id: c for c in services.plan_cluster(request=request).candidates}
    cautions = [line for line in before[nvl.pk].explanation if line.startswith("caution:")]
    picked = {g.pci_id for g in before[nvl.pk].gpus}
    assert len(cautions) == 1 and "no NVLink is known: import an nvidia-smi topo -m capture" in cautions[0]
    assert all(pci in cautions[0] for pci in picked)
    assert not any(
        line.startswith("caution:") for c in before.values() if c.host_id != nvl.pk for line in c.explanation
    )
    assert_same_as_cold()  # stored snapshots carry the caveats too
    inventory_fabric.import_smi_capture(host=nvl, text=NVL_CAPTURE)
    after = {c.host_id: c for c in services.plan_cluster(request=request).candidates}[nvl.pk]
    assert after.bottleneck[0] == "NV12" and not any(line.startswith("caution:") for line in after.explanation)
    assert_same_as_cold()


def test_numa_advice_uses_the_hosts_stored_node_sizes_also_in_a_fresh_process(lab):
    """vCenter's numaInfo gives each node's CPUs and memory: a VM wider than the node is told it spans nodes (it was
    told to sit on node 0), one that fits is told so; the sizes survive the stored snapshot."""
    wide = services.build_request(gpus_per_vm=2, consumption="passthrough", vcpus=120, memory_mb=900_000)
    small = services.build_request(gpus_per_vm=2, consumption="passthrough", vcpus=8, memory_mb=64 * 1024)
    for fresh in (False, True):
        if fresh:
            selectors.reset_snapshot_cache()
        fabric = selectors.fabric_snapshot(clusters=["pcie-cluster"])
        wide_lines = [x for x in plan(fabric, wide).best.explanation if x.startswith("NUMA node")]
        small_lines = [x for x in plan(fabric, small).best.explanation if x.startswith("NUMA node")]
        assert wide_lines and "the VM is larger than the node (120 vCPUs vs " in wide_lines[0]
        assert (
            "so it spans NUMA nodes" in wide_lines[0] and "place the VM's vCPUs and memory there" not in wide_lines[0]
        )
        assert small_lines and small_lines[0].endswith("place the VM's vCPUs and memory there (the VM fits the node)")
    assert selectors.snapshot_stats()["stored_hits"] > 0


def test_a_change_of_numa_node_size_gives_the_host_a_new_fabric_hash(lab):
    from inventory.models import NumaNode

    host = Host.objects.get(name=NVL)
    before = host.fabric_hash
    node = NumaNode.objects.filter(host=host).order_by("node_id").first()
    node.memory_mb = (node.memory_mb or 0) + 1024
    node.save(update_fields=["memory_mb"])
    inventory_fabric.rebuild_fabrics(hosts=[host])
    host.refresh_from_db()
    assert host.fabric_hash != before


def test_hardware_labels_reach_the_engine_from_the_inventory_also_in_a_fresh_process(lab):
    from inventory.models import Gpu

    host = Host.objects.get(name=NVL)
    before = host.fabric_hash
    Gpu.objects.filter(host=host).update(hardware_label="llm-pool")
    inventory_fabric.rebuild_fabrics(hosts=[host])
    host.refresh_from_db()
    assert host.fabric_hash != before  # a label change is a new fabric: cached templates are not reused
    request = services.build_request(gpus_per_vm=2, consumption="dynamic-passthrough", hardware_label="llm-pool")
    for fresh in (False, True):
        if fresh:
            selectors.reset_snapshot_cache()
        result = plan(selectors.fabric_snapshot(), request)
        assert {c.host for c in result.candidates} == {NVL}
        assert any("have another hardware label" in r for x in result.rejected for r in x.reasons)

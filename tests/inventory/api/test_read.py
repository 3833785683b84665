"""Reading the inventory through the API: what each endpoint shows, filters, ordering, pagination, and a constant
number of queries per list whatever its size."""

from __future__ import annotations

import pytest
from django.utils import timezone

from inventory.models import Gpu, GpuConsumer, Host, ResourceDomain, VgpuProfile, VirtualMachine
from tests import factories

pytestmark = pytest.mark.django_db

HGX = "esx-hgx-01.lab.local"
NVL = "esx-h100nvl-01.lab.local"
NAMES = [HGX, NVL, "esx-a100-01.lab.local", "esx-l40s-01.lab.local", "esx-a30-01.lab.local"]


def _results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_root_lists_every_endpoint(api):
    root = api.get("/api/").json()
    expected = {"vcenters", "clusters", "hosts", "gpus", "vms", "vgpu-profiles", "domains", "sync-runs", "plans",
                "reservations", "token", "schema", "docs", "whatif"}  # fmt: skip
    assert set(root) == expected
    assert root["plans"].endswith("/api/plans/") and root["reservations"].endswith("/api/reservations/")
    for name in expected - {"token", "plans"}:  # token and plans answer POST only
        assert api.get(root[name]).status_code == 200, name


def test_hosts_show_vcenter_cluster_and_gpu_counts_with_reservations(api, demo):
    host = Host.objects.get(name=NVL)
    before = next(h for h in _results(api.get("/api/hosts/")) if h["id"] == host.pk)
    assert before["vcenter"] == demo.pk and before["vcenter_name"] == "demo-lab"
    assert before["cluster"] == host.cluster_id and before["cluster_name"] == host.cluster.name
    assert (before["gpus_total"], before["gpus_used"], before["gpus_reserved"], before["gpus_free"]) == (4, 2, 0, 2)

    free_gpu = Gpu.objects.filter(host=host).exclude(consumers__isnull=False).first()
    factories.ReservationItemFactory(reservation=factories.ReservationFactory(host=host), gpu=free_gpu)
    after = api.get(f"/api/hosts/{host.pk}/").json()
    assert (after["gpus_total"], after["gpus_used"], after["gpus_reserved"], after["gpus_free"]) == (4, 2, 1, 1)


def test_host_list_pages_count_gpus_like_the_detail_whatever_the_ordering(api, demo):
    """A list page ordered by name counts only its own hosts (after the offset); by a count, the database orders
    on the counts. Both must say what each host's detail says, reservations included."""
    host = Host.objects.get(name=NVL)
    free_gpu = Gpu.objects.filter(host=host).exclude(consumers__isnull=False).first()
    factories.ReservationItemFactory(reservation=factories.ReservationFactory(host=host), gpu=free_gpu)
    counts = ("gpus_total", "gpus_used", "gpus_reserved", "gpus_free")
    detail = {
        pk: tuple(api.get(f"/api/hosts/{pk}/").json()[c] for c in counts)
        for pk in Host.objects.values_list("pk", flat=True)
    }
    assert detail[host.pk] == (4, 2, 1, 1)
    for params in (
        {"limit": 2, "offset": 1},
        {"limit": 2, "offset": 2, "ordering": "-gpus_free"},
        {"min_free_gpus": 1},
    ):
        rows = _results(api.get("/api/hosts/", params))
        assert rows and all(tuple(r[c] for c in counts) == detail[r["id"]] for r in rows), params
    by_free = _results(api.get("/api/hosts/", {"ordering": "gpus_free,id", "limit": 500}))
    assert [r["gpus_free"] for r in by_free] == sorted(r["gpus_free"] for r in by_free)


def test_same_host_name_in_two_vcenters_is_told_apart(api, demo):
    from tests.api.support import load_demo

    other = load_demo("second-lab")
    rows = _results(api.get("/api/hosts/", {"q": HGX}))
    assert sorted((r["name"], r["vcenter_name"]) for r in rows) == [(HGX, "demo-lab"), (HGX, "second-lab")]
    only = _results(api.get("/api/hosts/", {"q": HGX, "vcenter": other.pk}))
    assert [r["vcenter"] for r in only] == [other.pk]


def test_gpus_show_host_vcenter_mode_numa_consumers_and_reservation(api, demo):
    consumer = GpuConsumer.objects.select_related("gpu__host", "vm").filter(gpu__host__name=NVL).first()
    doc = api.get(f"/api/gpus/{consumer.gpu_id}/").json()
    assert doc["host"] == consumer.gpu.host_id and doc["host_name"] == NVL
    assert doc["vcenter"] == demo.pk and doc["vcenter_name"] == "demo-lab"
    assert doc["pci_id"] == consumer.gpu.pci_device.pci_id
    assert doc["mode"] in {"passthrough", "sameSize", "mixedSize", "multiInstanceGpu"}
    assert isinstance(doc["numa_node"], int)
    assert doc["consumers"][0]["vm"] == consumer.vm_id and doc["consumers"][0]["vm_name"] == consumer.vm.name
    assert doc["state"] in {"used", "partial"} and doc["reservations"] == []

    free = Gpu.objects.filter(host__name=NVL, consumers__isnull=True).first()
    assert api.get(f"/api/gpus/{free.pk}/").json()["state"] == "free"
    reservation = factories.ReservationFactory(host=free.host, vm_name="llm-7")
    factories.ReservationItemFactory(reservation=reservation, gpu=free)
    doc = api.get(f"/api/gpus/{free.pk}/").json()
    assert doc["state"] == "reserved"  # never shown as free
    assert [(r["id"], r["vm_name"]) for r in doc["reservations"]] == [(reservation.pk, "llm-7")]
    listed = next(g for g in _results(api.get("/api/gpus/", {"host": free.host_id})) if g["id"] == free.pk)
    assert [r["vm_name"] for r in listed["reservations"]] == ["llm-7"]


def test_expired_and_released_reservations_do_not_hold_a_gpu(api, demo):
    gpu = Gpu.objects.filter(host__name=NVL, consumers__isnull=True).first()
    expired = factories.ReservationFactory(host=gpu.host, expires_at=timezone.now() - timezone.timedelta(minutes=1))
    factories.ReservationItemFactory(reservation=expired, gpu=gpu)
    released = factories.ReservationFactory(host=gpu.host, status="released")
    factories.ReservationItemFactory(reservation=released, gpu=gpu)
    doc = api.get(f"/api/gpus/{gpu.pk}/").json()
    assert doc["state"] == "free" and doc["reservations"] == []


def test_clusters_count_hosts_and_gpus(api, demo):
    rows = {r["name"]: r for r in _results(api.get("/api/clusters/"))}
    for name, row in rows.items():
        hosts = Host.objects.filter(cluster__name=name, stale=False)
        assert row["host_count"] == hosts.count()
        assert row["gpus_total"] == Gpu.objects.filter(host__in=hosts, stale=False).count()
        assert row["gpus_free"] == row["gpus_total"] - row["gpus_used"] - row["gpus_reserved"]
        assert row["vcenter_name"] == "demo-lab"


def test_cluster_list_counts_alike_whether_ordered_by_a_count_or_not(api, demo):
    """The plain list counts its page's clusters in one grouped query; ordered by a count, the database annotates
    every cluster. Both must agree, with a reservation, an expired one and powered-off VMs in the lab."""
    host = Host.objects.get(name=NVL)
    free_gpus = list(Gpu.objects.filter(host=host).exclude(consumers__isnull=False)[:2])
    factories.ReservationItemFactory(reservation=factories.ReservationFactory(host=host), gpu=free_gpus[0])
    expired = factories.ReservationFactory(host=host, expires_at=timezone.now() - timezone.timedelta(minutes=1))
    factories.ReservationItemFactory(reservation=expired, gpu=free_gpus[1])
    counts = ("host_count", "gpus_total", "gpus_used", "gpus_reserved", "gpus_free")
    plain = {r["id"]: tuple(r[c] for c in counts) for r in _results(api.get("/api/clusters/"))}
    ordered = {
        r["id"]: tuple(r[c] for c in counts) for r in _results(api.get("/api/clusters/", {"ordering": "-gpus_free"}))
    }
    single = {pk: tuple(api.get(f"/api/clusters/{pk}/").json()[c] for c in counts) for pk in plain}
    assert plain == ordered == single
    assert plain[host.cluster_id][3] >= 1  # the active reservation counts, the expired one does not
    for total, used, reserved, free in (v[1:] for v in plain.values()):
        assert free == total - used - reserved


def test_vms_profiles_and_domains(api, demo):
    vm = VirtualMachine.objects.filter(gpu_consumers__isnull=False).first()
    doc = api.get(f"/api/vms/{vm.pk}/").json()
    assert doc["vcenter_name"] == "demo-lab" and doc["host"] == vm.host_id
    assert {g["gpu"] for g in doc["gpus"]} == set(vm.gpu_consumers.values_list("gpu_id", flat=True))
    assert _results(api.get("/api/vms/", {"has_gpu": "true"}))
    assert all(r["gpus"] for r in _results(api.get("/api/vms/", {"has_gpu": "true"})))

    profiles = _results(api.get("/api/vgpu-profiles/", {"limit": 500}))
    assert len(profiles) == VgpuProfile.objects.count() > 0
    assert all(p["is_mig"] == (p["mig_compute_slices"] is not None) for p in profiles)

    domain = ResourceDomain.objects.filter(host__name=HGX).first()
    doc = api.get(f"/api/domains/{domain.pk}/").json()
    assert doc["host_name"] == HGX and doc["domain_id"] == domain.domain_id
    assert doc["gpus"] == sorted(domain.members.values_list("pci_device__pci_id", flat=True))


def test_vcenters_and_sync_runs(api, demo):
    run = factories.SyncRunFactory(vcenter=demo, counts={"hosts": 4})
    vc = _results(api.get("/api/vcenters/"))[0]
    assert vc["name"] == "demo-lab" and vc["last_sync_status"] == "success" and vc["sync_interval_minutes"] == 5
    assert {"has_password", "inventory_stale", "last_success_at", "last_error"} <= set(vc)
    runs = _results(api.get("/api/sync-runs/", {"vcenter": demo.pk}))
    assert runs[0]["id"] == run.pk and runs[0]["finished"] is True and runs[0]["counts"] == {"hosts": 4}


@pytest.mark.parametrize(
    ("path", "params", "check"),
    [
        ("/api/hosts/", {"gpu_model": "H100"}, lambda rows: {r["name"] for r in rows} >= {HGX, NVL}),
        ("/api/hosts/", {"min_free_gpus": 5}, lambda rows: [r["name"] for r in rows] == [HGX]),
        ("/api/hosts/", {"ordering": "-gpus_total"}, lambda rows: rows[0]["name"] == HGX),
        ("/api/hosts/", {"ordering": "-name"}, lambda rows: [r["name"] for r in rows] == sorted(NAMES, reverse=True)),
        ("/api/gpus/", {"mode": "passthrough"}, lambda rows: all(r["mode"] == "passthrough" for r in rows)),
        ("/api/gpus/", {"ordering": "-pci_device__pci_id"}, lambda rows: rows[0]["pci_id"] >= rows[-1]["pci_id"]),
        ("/api/clusters/", {"ordering": "-gpus_total"}, lambda rows: rows[0]["gpus_total"] >= rows[-1]["gpus_total"]),
        ("/api/domains/", {"kind": "nvswitch-board"}, lambda rows: all(r["kind"] == "nvswitch-board" for r in rows)),
        ("/api/vms/", {"power_state": "poweredOff"}, lambda rows: all(r["power_state"] == "poweredOff" for r in rows)),
    ],
)
def test_filters_and_ordering(api, demo, path, params, check):
    rows = _results(api.get(path, params))
    assert rows and check(rows), rows


@pytest.mark.reliability("api input", "bad filter values")
def test_bad_filter_values_are_400_naming_the_field(api, demo):
    response = api.get("/api/hosts/", {"min_free_gpus": "lots", "mode": "turbo"})
    assert response.status_code == 400
    assert set(response.json()) == {"min_free_gpus", "mode"}


@pytest.mark.reliability("api input", "bad filter values")
def test_unknown_ordering_fields_are_400_naming_ordering(api, demo):
    response = api.get("/api/hosts/", {"ordering": "password_encrypted"})
    assert response.status_code == 400 and list(response.json()) == ["ordering"]


@pytest.mark.reliability("api input", "pagination beyond the limits")
def test_limit_offset_pagination(api, demo):
    first = api.get("/api/gpus/", {"limit": 5}).json()
    second = api.get("/api/gpus/", {"limit": 5, "offset": 5}).json()
    assert first["count"] == second["count"] == Gpu.objects.count()
    assert len(first["results"]) == 5 and first["next"] and "offset=5" in first["next"]
    assert not {g["id"] for g in first["results"]} & {g["id"] for g in second["results"]}
    assert len(_results(api.get("/api/gpus/", {"limit": 100_000}))) == Gpu.objects.count()  # capped at 500
    assert _results(api.get("/api/gpus/", {"offset": 10**12})) == []


# ---------------------------------------------------------------------------------------------- query counts


def _grow(n_hosts: int) -> None:
    """Hosts with two GPUs each, one GPU used by a VM and one reserved, a domain per host, a sync run."""
    vcenter = factories.VCenterFactory()
    cluster = factories.ClusterFactory(vcenter=vcenter)
    for i in range(n_hosts):
        host = factories.HostFactory(vcenter=vcenter, cluster=cluster)
        numa = factories.NumaNodeFactory(host=host, node_id=0)
        gpus = [
            factories.GpuFactory(host=host, pci_device=factories.PciDeviceFactory(host=host, numa_node=numa,
                                                                                  pci_id=f"0000:{bus}:00.0"))
            for bus in ("18", "19")
        ]  # fmt: skip
        vm = factories.VirtualMachineFactory(vcenter=vcenter, host=host, power_state="poweredOn")
        factories.GpuConsumerFactory(vm=vm, gpu=gpus[0])
        factories.ReservationItemFactory(reservation=factories.ReservationFactory(host=host), gpu=gpus[1])
        domain = factories.ResourceDomainFactory(host=host, domain_id=f"d{i}")
        domain.members.set(gpus)
        factories.SyncRunFactory(vcenter=vcenter)
        factories.VgpuProfileFactory(name=f"grid_test{VgpuProfile.objects.count()}-8c", framebuffer_gb=8)


LISTS = ["/api/vcenters/", "/api/clusters/", "/api/hosts/", "/api/gpus/", "/api/vms/", "/api/vgpu-profiles/",
         "/api/domains/", "/api/sync-runs/"]  # fmt: skip


@pytest.mark.parametrize("path", LISTS)
def test_lists_cost_a_constant_number_of_queries(api, path, django_assert_max_num_queries):
    api.get("/api/")  # the token and user are looked up per request; warm nothing else
    _grow(2)
    with django_assert_max_num_queries(12) as small:
        rows = _results(api.get(path, {"limit": 500}))
    assert rows
    _grow(25)
    with django_assert_max_num_queries(len(small.captured_queries)) as large:
        bigger = _results(api.get(path, {"limit": 500}))
    assert len(bigger) > len(rows)
    assert len(large.captured_queries) == len(small.captured_queries)

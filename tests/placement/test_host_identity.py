"""Hosts are told apart by primary key and vCenter: two vCenters with the same host names never double-book."""

from __future__ import annotations

import json

import pytest

from inventory import services as inventory_services
from inventory.models import Host
from placement import services
from placement.models import Reservation, ReservationItem
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db


@pytest.fixture
def twins():
    document = json.loads((LABS / "demo.json").read_text())
    for name in ("east", "west"):
        inventory_services.import_inventory(document=document, vcenter_name=name)


BOTH = ["pcie-cluster (east)", "pcie-cluster (west)"]  # one cluster name in two vCenters, each named


def one_gpu():
    return services.build_request(gpus_per_vm=1, consumption="passthrough", clusters=BOTH)


def test_candidates_and_rejections_carry_the_host_key_and_vcenter(twins):
    result = services.plan_cluster(request=services.build_request(gpus_per_vm=2, consumption="passthrough"))
    keys = {(c.host, c.vcenter, c.host_id) for c in result.candidates}
    assert {v for _, v, _ in keys} == {"east", "west"}
    for host, vcenter, host_id in keys:
        assert Host.objects.get(pk=host_id).name == host and Host.objects.get(pk=host_id).vcenter.name == vcenter
    for r in result.rejected:
        assert r.to_dict()["host_id"] == r.host_id and Host.objects.get(pk=r.host_id).vcenter.name == r.vcenter
    best = result.candidates[0].to_dict()
    assert {"host", "host_id", "vcenter"} <= set(best)


def test_reserving_until_full_never_books_a_gpu_twice(twins):
    request = one_gpu()
    reservations = []
    while True:
        try:
            reservations += services.reserve(request=request, vm_name=f"vm-{len(reservations)}")
        except services.NoCapacity as exc:
            assert "no host can take" in str(exc)
            break
        assert len(reservations) < 100
    items = list(ReservationItem.objects.values_list("gpu_id", flat=True))
    assert len(items) == len(set(items)) == len(reservations)
    assert {r.host.vcenter.name for r in reservations} == {"east", "west"}
    # Both vCenters' identical hosts were filled to the same count: the twins are symmetric.
    per_vcenter = {v: sum(1 for r in reservations if r.host.vcenter.name == v) for v in ("east", "west")}
    assert per_vcenter["east"] == per_vcenter["west"]


def test_accepting_a_candidate_locks_the_host_of_its_vcenter(twins):
    request = one_gpu()
    west = next(c for c in services.plan_cluster(request=request).candidates if c.vcenter == "west")
    reservation = services.accept_candidate(request=request, candidate=west, vm_name="on-west")
    assert reservation.host_id == west.host_id and reservation.host.vcenter.name == "west"
    east_twin = Host.objects.get(name=west.host, vcenter__name="east")
    assert not Reservation.objects.filter(host=east_twin).exists()
    # The east twin still offers the same GPU.
    again = services.plan_cluster(request=request)
    assert any(c.host_id == east_twin.pk and c.gpus == west.gpus for c in again.candidates)


def test_evacuating_an_ambiguous_name_lists_the_vcenters(twins):
    with pytest.raises(services.RequestError, match=r"several vCenters \(east, west\)") as info:
        services.plan_host_evacuation(host_name="esx-a100-01.lab.local")
    assert info.value.field == "evacuate"
    result = services.plan_host_evacuation(host_name="esx-a100-01.lab.local", vcenter="west")
    assert result.vcenter == "west"
    assert result.host_id == Host.objects.get(name="esx-a100-01.lab.local", vcenter__name="west").pk
    assert all(m.target is None or m.target.vcenter == "west" for m in result.moves)
    with pytest.raises(services.RequestError, match="no vCenter named 'north'; choices: east, west"):
        services.plan_host_evacuation(host_name="esx-a100-01.lab.local", vcenter="north")


def test_joint_replicas_with_anti_affinity_take_distinct_hosts_in_one_transaction(twins):
    request = services.build_request(gpus_per_vm=1, consumption="passthrough", vms=3, anti_affinity=True, clusters=BOTH)
    reservations = services.reserve(request=request, vm_name="svc")
    assert [r.vm_name for r in reservations] == ["svc-1", "svc-2", "svc-3"]
    assert len({r.host_id for r in reservations}) == 3
    too_many = services.build_request(
        gpus_per_vm=1, consumption="passthrough", vms=7, anti_affinity=True, clusters=BOTH
    )
    with pytest.raises(services.NoCapacity, match="replica 7 of 7 has no host"):
        services.reserve(request=too_many, vm_name="wide")
    assert not Reservation.objects.filter(vm_name__startswith="wide").exists()  # none, not some


def test_a_cluster_name_two_vcenters_use_is_refused_with_the_choices_and_each_can_be_picked(twins):
    with pytest.raises(services.RequestError, match=r"cluster 'pcie-cluster' is in several vCenters: "
                       r"pcie-cluster \(east\) id \d+, pcie-cluster \(west\) id \d+; give its id"):  # fmt: skip
        services.plan_cluster(
            request=services.build_request(gpus_per_vm=1, consumption="passthrough", clusters=["pcie-cluster"])
        )
    west = services.plan_cluster(
        request=services.build_request(gpus_per_vm=1, consumption="passthrough", clusters=["pcie-cluster (west)"])
    )
    assert west.candidates and {c.vcenter for c in west.candidates} == {"west"}
    assert {r.vcenter for r in west.rejected} <= {"west"}
    east_id = Host.objects.get(name=west.candidates[0].host, vcenter__name="east").cluster_id
    by_id = services.plan_cluster(
        request=services.build_request(gpus_per_vm=1, consumption="passthrough", clusters=[str(east_id)])
    )
    assert {c.vcenter for c in by_id.candidates} == {"east"}
    (reservation,) = services.reserve(
        request=services.build_request(gpus_per_vm=1, consumption="passthrough", clusters=["pcie-cluster (west)"]),
        vm_name="only-west",
    )
    assert reservation.host.vcenter.name == "west"


def test_one_vm_name_can_be_reserved_once_per_vcenter(twins):
    def in_(vcenter: str):
        return services.build_request(gpus_per_vm=1, consumption="passthrough", clusters=[f"pcie-cluster ({vcenter})"])

    (east,) = services.reserve(request=in_("east"), vm_name="llama-70b-01")
    (west,) = services.reserve(request=in_("west"), vm_name="llama-70b-01")  # another VM of that name
    assert (east.vcenter.name, west.vcenter.name) == ("east", "west")
    with pytest.raises(services.RequestError, match=rf"'llama-70b-01' already holds an active reservation in vCenter "
                       rf"east \(#{east.pk} on {east.host.name}\): release it or choose another name"):  # fmt: skip
        services.reserve(request=in_("east"), vm_name="llama-70b-01")
    assert Reservation.objects.filter(vm_name="llama-70b-01").count() == 2


def test_pages_of_same_named_hosts_and_clusters_have_titles_naming_their_vcenter(twins, client):
    """Two tabs of esx-01 (one per vCenter) had the same title, so tabs and bookmarks could not be told apart."""
    from django.contrib.auth import get_user_model

    from inventory.models import Cluster

    client.force_login(get_user_model().objects.create_superuser("titles"))
    host = Host.objects.filter(vcenter__name="west", gpus__isnull=False).first()
    cluster = Cluster.objects.get(vcenter__name="east", name="pcie-cluster")
    pages = {
        f"/inventory/hosts/{host.pk}/": f"{host.name} (west)",
        f"/inventory/hosts/{host.pk}/evacuation/": f"Evacuate {host.name} (west)",
        f"/clusters/{cluster.pk}/": "pcie-cluster (east)",
    }
    for url, title in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert f"<title>{title} · GPU Placement Advisor</title>" in response.content.decode(), url

"""Plans and reservations: a long ``clusters`` list is capped, de-duplicated and resolved with a constant number of
queries (trial A, H2); a 409 names the reason of the hosts that matter and how many it left out (A, M4);
reservations stored by older versions still serialize (trial B, finding 2)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import Gpu, Host
from placement import services
from placement.api.serializers import MAX_CLUSTERS
from placement.engine.result import Plan, Rejection
from placement.selectors import resolve_clusters
from tests import factories

pytestmark = pytest.mark.django_db

HGX = "esx-hgx-01.lab.local"


# ---------------------------------------------------------------------------------------------- clusters


def test_a_clusters_list_over_the_cap_is_a_400_naming_the_cap(api_as, demo):
    planner = api_as("planner")
    body = {"gpus_per_vm": 1, "clusters": ["pcie-cluster"] * (MAX_CLUSTERS + 1)}
    for path, extra in (("/api/plans/", {}), ("/api/reservations/", {"vm_name": "too-many"})):
        response = planner.post(path, {**body, **extra}, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["clusters"] == [
            f"at most {MAX_CLUSTERS} clusters per request: name fewer, or none for every cluster"
        ]


def test_a_repeated_cluster_counts_once(api_as, demo):
    response = api_as("planner").post(
        "/api/plans/", {"gpus_per_vm": 1, "clusters": ["pcie-cluster"] * MAX_CLUSTERS}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["candidates"]


def test_clusters_are_resolved_with_one_query_whatever_their_number(demo):
    names = ["pcie-cluster", "hgx-cluster"]
    ids = [str(c.pk) for c in resolve_clusters(names)]
    with CaptureQueriesContext(connection) as few:
        resolve_clusters(names[:1])
    many = [*names, *ids, "pcie-cluster (demo-lab)", "hgx-cluster (demo-lab)"] * 40
    with CaptureQueriesContext(connection) as lots:
        found = resolve_clusters(many)
    assert len(lots) == len(few) == 1
    assert sorted(c.name for c in found) == ["hgx-cluster", "pcie-cluster"]


def test_cluster_names_keep_their_meaning(demo):
    pcie = resolve_clusters(["pcie-cluster"])[0]
    assert resolve_clusters([pcie.pk]) == [pcie]
    assert resolve_clusters(["pcie-cluster (demo-lab)"]) == [pcie]
    with pytest.raises(services.RequestError, match="no cluster with id or name 'nope'; choices: hgx-cluster"):
        resolve_clusters(["pcie-cluster", "nope"])
    with pytest.raises(services.RequestError, match="no cluster with id or name 'pcie-cluster \\(other\\)'"):
        resolve_clusters(["pcie-cluster (other)"])


# ---------------------------------------------------------------------------------------------- 409 reasons


def _request(profile: str):
    return services.build_request(gpus_per_vm=1, profile=profile, consumption=services.default_consumption(profile))


def test_why_nothing_fits_puts_the_hosts_of_the_requested_board_first():
    rejected = [Rejection(f"other-{i}", (f"no H100-80GB GPUs (host has 2 x board-{i})",)) for i in range(3)]
    rejected += [Rejection(f"other-{i}b", ("no H100-80GB GPUs (host has 2 x board-0)",)) for i in range(3)]
    rejected.append(Rejection("hgx", ("8 of 8 GPUs are at the same-size maximum",)))
    text = services.why_nothing_fits(Plan((), tuple(rejected)), _request("nvidia_h100xm-80c"))
    assert text.startswith("no host can take 1 GPU per VM (1 host: 8 of 8 GPUs are at the same-size maximum; ")
    assert "4 hosts: no H100-80GB GPUs (host has 2 x board-0)" in text
    assert "board-1" in text and "board-2" in text and "more host" not in text


def test_why_nothing_fits_says_how_many_hosts_it_left_out():
    shown = services.WHY_REASONS_SHOWN
    rejected = [Rejection(f"h{i}-{k}", (f"common reason {i}",)) for i in range(shown) for k in range(3)]
    rejected += [Rejection(f"r{i}", (reason,)) for i, reason in enumerate(["rare a", "rare a", "rare b", "rare c"])]
    text = services.why_nothing_fits(Plan((), tuple(rejected)), _request("nvidia_h100xm-80c"))
    assert text.count("3 hosts: common reason") == shown and "rare" not in text
    assert text.endswith("; and 4 more hosts for 3 other reasons)")


def test_the_409_of_a_full_hgx_host_names_its_reason(api_as, demo):
    hgx = Host.objects.get(name=HGX)
    for gpu in Gpu.objects.filter(host=hgx):
        reservation = factories.ReservationFactory(host=hgx, vm_name=f"fill-{gpu.pk}")
        factories.ReservationItemFactory(reservation=reservation, gpu=gpu, kind="vgpu", profile="nvidia_h100xm-80c")
    response = api_as("planner").post(
        "/api/reservations/", {"gpus_per_vm": 1, "vm_name": "fill-x", "profile": "nvidia_h100xm-80c"}, format="json"
    )
    assert response.status_code == 409, response.content
    detail = response.json()["detail"]
    first = detail.split("(", 1)[1]
    assert not first.startswith("1 host: no H100-80GB GPUs"), detail
    assert detail.count("no H100-80GB GPUs") == 4, detail  # the four hosts of other boards, after it


# ---------------------------------------------------------------------------------------------- old reservations


def test_reservations_stored_by_an_older_version_serialize(api_as, demo):
    host = Host.objects.get(name="esx-l40s-01.lab.local")
    gpu = Gpu.objects.filter(host=host).select_related("pci_device").first()
    old = factories.ReservationFactory(
        host=host,
        vm_name="llama-old-01",
        request={"gpus_per_vm": 1, "consumption": "passthrough", "profile": None, "vms": 1, "board": None,
                 "min_framebuffer_gb": None, "interconnect": "any", "vcpus": 0, "memory_mb": 0,
                 "anti_affinity": False, "clusters": []},
        candidate={"host": host.name, "gpus": [{"pci_id": gpu.pci_device.pci_id, "index": 0}], "score": 0.0,
                   "bottleneck": {"label": "single", "gbps": 0.0}, "numa_nodes": [0], "explanation": ["one GPU"]},
    )  # fmt: skip
    factories.ReservationItemFactory(reservation=old, gpu=gpu)
    planner = api_as("planner")
    listed = planner.get("/api/reservations/")
    assert listed.status_code == 200, listed.content
    doc = planner.get(f"/api/reservations/{old.pk}/").json()
    assert doc["candidate"]["host"] == host.name
    assert doc["candidate"]["host_id"] is None and doc["candidate"]["interconnect"] is None
    assert doc["candidate"]["gpus"][0]["pci_id"] == gpu.pci_device.pci_id
    assert planner.get("/api/reservations/", {"status": "active"}).status_code == 200


def test_a_consumption_or_interconnect_outside_the_choices_lists_them(api_as, demo):
    """Trial K #6: '"foo" is not a valid choice.' named none of the choices."""
    response = api_as("planner").post(
        "/api/plans/", {"gpus_per_vm": 1, "consumption": "foo", "interconnect": "pcie"}, format="json"
    )
    assert response.status_code == 400
    errors = response.json()
    assert errors["consumption"] == ["'foo' is not one of: passthrough, dynamic-passthrough, vgpu, mig, device-group"]
    assert errors["interconnect"] == ["'pcie' is not one of: nvlink, same-numa, same-pcie-switch, any"]

"""The lists take their filters the same way and answer a value they cannot read with a 400 saying what they take
(trial F, findings 7 and 16): ``vcenter`` by id or name everywhere, ``cluster`` by id or name, ordering errors
naming the keys, ``host`` and ``host_id`` on reservations, a single-valued parameter given once, and an exact
``vm_name_exact`` beside the substring ``vm_name``."""

from __future__ import annotations

import pytest

from inventory.models import Cluster, Host
from tests import factories

pytestmark = pytest.mark.django_db

LISTS = ["/api/vcenters/", "/api/clusters/", "/api/hosts/", "/api/gpus/", "/api/vms/", "/api/vgpu-profiles/",
         "/api/domains/", "/api/sync-runs/", "/api/reservations/", "/api/whatif/"]  # fmt: skip


def reserve(host: Host, vm_name: str = "vm") -> int:
    candidate = {"host": host.name, "gpus": [], "score": 0}
    return factories.ReservationFactory(host=host, vm_name=vm_name, candidate=candidate).pk


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# ---------------------------------------------------------------------------------------------- vcenter


def test_sync_runs_take_a_vcenter_by_id_or_by_name_in_any_case(api, demo):
    other = factories.VCenterFactory(name="lab2")
    mine = factories.SyncRunFactory(vcenter=other).pk
    factories.SyncRunFactory(vcenter=demo)
    assert ids(api.get("/api/sync-runs/", {"vcenter": other.pk})) == {mine}
    assert ids(api.get("/api/sync-runs/", {"vcenter": "lab2"})) == {mine}
    assert ids(api.get("/api/sync-runs/", {"vcenter": "LAB2"})) == {mine}
    unknown = api.get("/api/sync-runs/", {"vcenter": "lab3"})
    assert unknown.status_code == 400 and unknown.json() == {"vcenter": ["no vCenter with id or name 'lab3'"]}


@pytest.mark.parametrize("path", ["/api/sync-runs/", "/api/hosts/", "/api/gpus/", "/api/reservations/"])
def test_an_unknown_vcenter_id_is_named_not_djangos_generic_choice_message(api, demo, path):
    response = api.get(path, {"vcenter": "999999"})
    assert response.status_code == 400
    assert response.json() == {"vcenter": ["no vCenter with id or name '999999'"]}


def test_the_sync_history_page_still_lists_vcenters_to_pick(admin_client, demo):
    page = admin_client.get("/syncs/").content.decode()
    assert '<select name="vcenter"' in page and ">demo-lab</option>" in page


# ---------------------------------------------------------------------------------------------- cluster


@pytest.mark.parametrize("path", ["/api/hosts/", "/api/gpus/"])
def test_a_cluster_filter_takes_an_id_a_name_or_name_and_vcenter(api, demo, path):
    hgx = Cluster.objects.get(vcenter=demo, name="hgx-cluster")
    by_id = ids(api.get(path, {"cluster": hgx.pk, "limit": 500}))
    assert by_id
    assert ids(api.get(path, {"cluster": "hgx-cluster", "limit": 500})) == by_id
    assert ids(api.get(path, {"cluster": "hgx-cluster (DEMO-LAB)", "limit": 500})) == by_id


@pytest.mark.parametrize("path", ["/api/hosts/", "/api/gpus/"])
def test_an_ambiguous_cluster_name_lists_each_with_its_id_and_vcenter(api, demo, path):
    twin = factories.ClusterFactory(name="hgx-cluster", vcenter=factories.VCenterFactory(name="lab2"))
    hgx = Cluster.objects.get(vcenter=demo, name="hgx-cluster")
    response = api.get(path, {"cluster": "hgx-cluster"})
    assert response.status_code == 400
    message = response.json()["cluster"][0]
    assert message.startswith("cluster 'hgx-cluster' is in several vCenters: ")
    assert f"hgx-cluster (demo-lab) id {hgx.pk}" in message and f"hgx-cluster (lab2) id {twin.pk}" in message
    assert ids(api.get(path, {"cluster": "hgx-cluster (lab2)"})) == set()


@pytest.mark.parametrize("path", ["/api/hosts/", "/api/gpus/"])
@pytest.mark.parametrize("value", ["nope", "999999", "nope (demo-lab)", "50%s\x02"])  # "%": see VCenterChoiceField
def test_an_unknown_cluster_says_what_the_filter_takes(api, demo, path, value):
    response = api.get(path, {"cluster": value})
    assert response.status_code == 400
    message = response.json()["cluster"][0]
    assert message.startswith(f"no cluster with id or name {value!r}; choices: ")
    assert "hgx-cluster (demo-lab) id " in message


# ---------------------------------------------------------------------------------------------- ordering


def test_reservations_name_the_ordering_keys_like_the_inventory_lists(api, demo):
    response = api.get("/api/reservations/", {"ordering": "host,-bogus"})
    assert response.status_code == 400
    assert response.json() == {
        "ordering": [
            "cannot order by 'host', '-bogus': use created, expires_at, vm_name, status, id (prefix - for descending)"
        ]
    }


def test_reservations_order_by_id_too(api, demo):
    host = Host.objects.filter(vcenter=demo).first()
    made = [reserve(host, f"vm-{i}") for i in range(3)]
    response = api.get("/api/reservations/", {"ordering": "id"})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == sorted(made)
    down = api.get("/api/reservations/", {"ordering": "-id"}).json()["results"]
    assert [row["id"] for row in down] == sorted(made, reverse=True)


# ---------------------------------------------------------------------------------------------- host / host_id


def test_reservations_take_host_and_host_id_alike(api, demo):
    hosts = list(Host.objects.filter(vcenter=demo).order_by("pk")[:2])
    mine = reserve(hosts[0])
    reserve(hosts[1], "vm-b")
    assert ids(api.get("/api/reservations/", {"host_id": hosts[0].pk})) == {mine}
    assert ids(api.get("/api/reservations/", {"host": hosts[0].pk})) == {mine}
    refused = api.get("/api/reservations/", {"host": "1.5"})
    assert refused.status_code == 400 and list(refused.json()) == ["host"]


# ---------------------------------------------------------------------------------------------- repeated parameters


@pytest.mark.parametrize(
    ("path", "name", "values"),
    [
        ("/api/gpus/", "state", ["free", "used"]),
        ("/api/hosts/", "vcenter", ["demo-lab", "demo-lab"]),
        ("/api/reservations/", "status", ["active", "expired", "active"]),
        ("/api/sync-runs/", "status", ["success", "failed"]),
        ("/api/vcenters/", "limit", ["5", "10"]),
        ("/api/whatif/", "offset", ["0", "1"]),
        ("/api/domains/", "ordering", ["kind", "id"]),
        ("/api/vms/", "format", ["json", "json"]),
    ],
)
def test_a_single_valued_parameter_given_twice_is_a_400_naming_it(api, demo, path, name, values):
    response = api.get(path, {name: values})
    assert response.status_code == 400, response.content
    assert response.json() == {name: [f"given {len(values)} times: this parameter takes one value (send it once)"]}


@pytest.mark.parametrize("path", LISTS)
def test_every_list_refuses_a_repeated_paging_parameter(api, demo, path):
    response = api.get(path, {"limit": ["1", "2"]})
    assert response.status_code == 400 and list(response.json()) == ["limit"]


def test_a_repeated_unknown_parameter_is_named_as_unknown(api, demo):
    response = api.get("/api/gpus/", {"statee": ["a", "b"]})
    assert response.status_code == 400
    assert response.json()["statee"][0].startswith("unknown query parameter")


# ---------------------------------------------------------------------------------------------- vm_name


def test_vm_name_exact_matches_the_whole_name_and_vm_name_stays_a_substring(api, demo):
    host = Host.objects.filter(vcenter=demo).first()
    exact = reserve(host, "llm-1")
    longer = reserve(host, "llm-10")
    reserve(host, "other")
    assert ids(api.get("/api/reservations/", {"vm_name_exact": "llm-1"})) == {exact}
    assert ids(api.get("/api/reservations/", {"vm_name_exact": "LLM-1"})) == set()
    assert ids(api.get("/api/reservations/", {"vm_name": "llm-1"})) == {exact, longer}


def test_the_schema_documents_both_vm_name_filters_and_the_new_spellings(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    params = {p["name"]: p for p in schema["paths"]["/api/reservations/"]["get"]["parameters"]}
    assert "substring" in params["vm_name"]["description"] and "vm_name_exact" in params["vm_name"]["description"]
    assert "whole" in params["vm_name_exact"]["description"]
    assert "host_id" in params["host"]["description"]
    assert "id" in params["ordering"]["schema"]["items"]["enum"]
    for path in ("/api/hosts/", "/api/gpus/"):
        cluster = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}["cluster"]
        assert cluster["schema"]["type"] == "string" and "name" in cluster["description"]
    sync = {p["name"]: p for p in schema["paths"]["/api/sync-runs/"]["get"]["parameters"]}["vcenter"]
    assert sync["schema"]["type"] == "string"


def test_a_nul_in_a_cluster_name_is_a_400_not_a_database_error(api, demo):
    response = api.get("/api/hosts/", {"cluster": "hgx\x00cluster"})
    assert response.status_code == 400 and response.json() == {"cluster": ["must not contain a NUL character"]}

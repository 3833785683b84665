"""A Unicode digit is not a primary key (it gave a 500 on four endpoints), and paging a list sorted on a field
many rows share shows every row once (it repeated some and skipped others): trial A, H1 and H3."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("digit", ["\u00b2", "\u2460", "\u00b9", "\u0663"])  # superscripts, circled, Arabic-Indic
def test_unicode_digits_are_names_not_ids(api_as, demo, digit):
    planner = api_as("planner")
    plan = planner.post("/api/plans/", {"gpus_per_vm": 1, "clusters": [digit]}, format="json")
    assert plan.status_code == 400 and "clusters" in plan.json()
    reserve = planner.post(
        "/api/reservations/", {"gpus_per_vm": 1, "clusters": [digit], "vm_name": "digits"}, format="json"
    )
    assert reserve.status_code == 400 and "clusters" in reserve.json()
    listed = planner.get("/api/reservations/", {"vcenter": digit})  # no vCenter has that name: refused, not a 500
    assert listed.status_code == 400 and listed.json() == {"vcenter": [f"no vCenter with id or name {digit!r}"]}
    whatif = planner.post("/api/whatif/", {"cluster": digit, "runs": 1}, format="json")
    assert whatif.status_code == 400 and "cluster" in whatif.json()


@pytest.mark.parametrize(
    ("path", "ordering"),
    [
        ("/api/gpus/", "model"),
        ("/api/gpus/", "-model"),
        ("/api/hosts/", "-gpus_unavailable"),
        ("/api/vms/", "vcpus"),
        ("/api/clusters/", "gpus_unavailable"),
    ],
)
def test_paging_a_sort_on_a_shared_value_shows_every_row_once(api_as, demo, path, ordering):
    viewer = api_as("viewer")
    everything = viewer.get(path, {"ordering": ordering, "limit": 1000}).json()
    seen = []
    for offset in range(everything["count"]):
        seen += [
            row["id"]
            for row in viewer.get(path, {"ordering": ordering, "limit": 1, "offset": offset}).json()["results"]
        ]
    assert len(seen) == everything["count"] > 1
    assert seen == [row["id"] for row in everything["results"]]  # one order, page after page


def test_paging_reservations_sorted_by_status_shows_each_once(api_as, demo):
    planner = api_as("planner")
    for i in range(4):
        response = planner.post("/api/reservations/", {"gpus_per_vm": 1, "vm_name": f"page-{i}"}, format="json")
        assert response.status_code == 201, response.content
    count = planner.get("/api/reservations/").json()["count"]
    seen = []
    for offset in range(count):
        page = planner.get("/api/reservations/", {"ordering": "status", "limit": 1, "offset": offset}).json()
        seen += [row["id"] for row in page["results"]]
    assert sorted(seen) == sorted(set(seen)) and len(seen) == count >= 4

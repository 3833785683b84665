"""``POST /api/whatif/`` (``placement.api.whatif``): one 400 answer names every bad field at once."""

from __future__ import annotations

import pytest

from placement.models import WhatIfRun
from tests.api.support import load_demo, token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def shape_refusal(value, what: str) -> str:
    return (
        f"applies only to hypothetical hosts, got {value!r}: a run on a stored cluster simulates the cluster's own "
        f"{what}; leave it out"
    )


@pytest.fixture
def planner_api():
    load_demo()
    return token_client(UserFactory(role="planner"))


def test_a_bad_field_and_a_hosts_value_on_a_cluster_are_refused_in_one_answer(planner_api):
    """Trial finding: runs 0 with hosts 4 on a cluster answered only the runs error; the cluster refusal came once
    runs was fixed (DRF validates the fields before the object)."""
    r = planner_api.post("/api/whatif/", {"cluster": "pcie-cluster", "hosts": 4, "runs": 0}, format="json")
    assert r.status_code == 400
    body = r.json()
    assert body["runs"] == ["Ensure this value is greater than or equal to 1."]
    assert body["hosts"] == [shape_refusal(4, "hosts")]
    assert not WhatIfRun.objects.exists()


def test_every_hypothetical_shape_given_with_a_cluster_is_named(planner_api):
    """The three were refused one at a time (hosts first), each only once the previous was left out."""
    data = {"cluster": "pcie-cluster", "hosts": 4, "gpus_per_host": 2, "topology": "hgx", "runs": 5}
    r = planner_api.post("/api/whatif/", data, format="json")
    assert r.status_code == 400
    assert r.json() == {
        "hosts": [shape_refusal(4, "hosts")],
        "gpus_per_host": [shape_refusal(2, "GPUs per host")],
        "topology": [shape_refusal("hgx", "GPU topology")],
    }


def test_an_unknown_cluster_and_its_hosts_value_are_both_named(planner_api):
    r = planner_api.post("/api/whatif/", {"cluster": "no-such-cluster", "topology": "pairs"}, format="json")
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"cluster", "topology"}
    assert body["topology"] == [shape_refusal("pairs", "GPU topology")]


def test_the_defaults_with_a_cluster_are_still_accepted(planner_api):
    data = {
        "cluster": "pcie-cluster",
        "board": "A100-80GB",
        "hosts": 1,
        "gpus_per_host": 1,
        "topology": "pcie",
        "runs": 2,
    }
    r = planner_api.post("/api/whatif/", data, format="json")
    assert r.status_code == 201, r.content

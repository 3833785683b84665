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


DEFAULT_WEIGHTS = (
    "give one weight per catalog entry: no catalog was given, and the default catalog for mixed-size mode on "
    "A100-80GB has 3 entries (8C,10C,20C), got 2 weights; give 3 weights in that order, or give the catalog"
)


def test_weights_without_a_catalog_name_the_default_catalog(planner_api):
    r = planner_api.post("/api/whatif/", {"weights": [1, 2], "runs": 2}, format="json")
    assert r.status_code == 400 and r.json() == {"weights": [DEFAULT_WEIGHTS]}


def test_weights_without_a_catalog_are_refused_beside_another_bad_field(planner_api):
    """They were checked only by the engine, after every field was valid: runs 0 hid them."""
    r = planner_api.post("/api/whatif/", {"weights": [1, 2], "runs": 0}, format="json")
    assert r.status_code == 400
    assert r.json()["weights"] == [DEFAULT_WEIGHTS] and "runs" in r.json()


def test_weights_without_a_catalog_with_a_bad_board_name_only_the_board(planner_api):
    r = planner_api.post("/api/whatif/", {"board": "B999", "weights": [1, 2], "runs": 2}, format="json")
    assert r.status_code == 400 and set(r.json()) == {"board"}

"""``"name (vCenter)"`` names the vCenter in any case, as ``?vcenter=`` and ``--vcenter`` do (trial F, finding 17);
cluster names themselves stay as vCenter spells them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import Cluster
from placement import services
from placement.selectors import resolve_clusters
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_vcenter_part_matches_ignoring_case(demo):
    hgx = Cluster.objects.get(vcenter=demo, name="hgx-cluster")
    assert resolve_clusters(["hgx-cluster (DEMO-LAB)"]) == [hgx]
    assert resolve_clusters(["hgx-cluster (Demo-Lab)", "hgx-cluster (demo-lab)"]) == [hgx]


def test_the_cluster_part_stays_exact(demo):
    with pytest.raises(services.RequestError, match="no cluster with id or name 'HGX-cluster \\(demo-lab\\)'"):
        resolve_clusters(["HGX-cluster (demo-lab)"])


def test_a_twin_in_another_vcenter_is_told_apart_by_the_vcenter_in_any_case(demo):
    lab2 = factories.VCenterFactory(name="lab2")
    twin = factories.ClusterFactory(name="hgx-cluster", vcenter=lab2)
    assert resolve_clusters(["hgx-cluster (LAB2)"]) == [twin]
    with pytest.raises(services.RequestError, match="in several vCenters"):
        resolve_clusters(["hgx-cluster"])


def test_case_insensitive_vcenters_cost_one_more_query_whatever_their_number(demo):
    with CaptureQueriesContext(connection) as few:
        resolve_clusters(["hgx-cluster (DEMO-LAB)"])
    with CaptureQueriesContext(connection) as lots:
        found = resolve_clusters([f"{name} ({vc})" for name in ("hgx-cluster", "pcie-cluster")
                                  for vc in ("DEMO-LAB", "Demo-lab", "demo-LAB")])  # fmt: skip
    assert len(lots) == len(few) == 2
    assert sorted(c.name for c in found) == ["hgx-cluster", "pcie-cluster"]


def test_the_api_plans_with_the_vcenter_in_another_case(api_as, demo):
    response = api_as("planner").post(
        "/api/plans/", {"gpus_per_vm": 1, "clusters": ["pcie-cluster (DEMO-LAB)"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["candidates"]

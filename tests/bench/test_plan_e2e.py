"""bench/plan_e2e.py on a tiny lab: it runs, and the snapshot plans exactly like the old full read (no timings
asserted)."""

from __future__ import annotations

import pytest

from bench import plan_e2e
from inventory import services as inventory_services
from inventory.models import Host

pytestmark = pytest.mark.django_db


def test_the_small_cluster_is_renamed_consistently():
    document = plan_e2e.lab(3, cluster=plan_e2e.RSS_CLUSTER, vms=6, seed=2)
    hosts = {h["name"] for h in document["hosts"]}
    assert all(h.startswith(plan_e2e.RSS_CLUSTER) and h_cluster == plan_e2e.RSS_CLUSTER
               for h, h_cluster in ((h["name"], h["cluster"]) for h in document["hosts"]))  # fmt: skip
    assert {v["host"] for v in document["vms"] if v.get("host")} <= hosts


def test_warm_run_on_a_small_lab_matches_the_old_path():
    inventory_services.import_inventory(document=plan_e2e.lab(6, vms=12), vcenter_name="scale")
    inventory_services.import_inventory(document=plan_e2e.lab(3, cluster=plan_e2e.RSS_CLUSTER, vms=6, seed=2),
                                        vcenter_name="rss")  # fmt: skip
    assert Host.objects.filter(cluster__name=plan_e2e.CLUSTER).count() == 6
    result = plan_e2e.warm(6, reps=1, rss=False)
    assert set(result["shapes"]) == set(plan_e2e.SHAPES)
    for row in result["shapes"].values():
        assert row["hosts"] == 6 and row["same_plan_as_old"], row

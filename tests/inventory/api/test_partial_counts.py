"""``gpus_partial`` next to ``gpus_used`` on hosts and clusters (trial report C, finding 7): ``gpus_used`` counts
GPUs a VM holds, full or partly used, so the overview's split (in use, partly used vGPU) could not be reproduced
from the API. Now in use = gpus_used - gpus_partial, partly used = gpus_partial, on every path of the lists (counted
per page, annotated for ordering) and on a single object."""

from __future__ import annotations

import pytest

from inventory import occupancy
from inventory.models import Cluster, Gpu, GpuConsumer, Host

pytestmark = pytest.mark.django_db

A100 = "esx-a100-01.lab.local"


def _results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.fixture
def estate(demo):
    """The demo lab plus one more partly used GPU: an A100 vGPU of the A100 host's used GPU moved to its idle
    one, so the host holds one 20C on each 80 GB GPU (both partly used)."""
    gpus = list(Gpu.objects.filter(host__name=A100).order_by("pk"))
    held = [g for g in gpus if g.consumers.exists()]
    idle = [g for g in gpus if not g.consumers.exists()]
    if held and idle:
        consumer = GpuConsumer.objects.filter(gpu=held[0]).first()
        consumer.gpu = idle[0]
        consumer.save()
    return demo


def overview_split() -> dict[int, tuple[int, int]]:
    """(in use, partly used) per cluster id, as the overview's cluster rows count them."""
    return {s.cluster_id: (s.total("used"), s.total("partial")) for s in occupancy.cluster_summaries() if s.cluster_id}


def test_clusters_reproduce_the_overview_split(api, estate):
    split = overview_split()
    assert any(partial for _, partial in split.values()), "the lab must have partly used GPUs"
    for params in ({}, {"ordering": "-gpus_free"}):  # counted per page, and annotated for ordering
        rows = _results(api.get("/api/clusters/", params))
        assert {c["id"] for c in rows} == set(split)
        for c in rows:
            used, partial = split[c["id"]]
            assert (c["gpus_used"] - c["gpus_partial"], c["gpus_partial"]) == (used, partial), (c["name"], params)
    one = Cluster.objects.get(name="pcie-cluster")
    body = api.get(f"/api/clusters/{one.pk}/").json()
    assert (body["gpus_used"] - body["gpus_partial"], body["gpus_partial"]) == split[one.pk]


def test_hosts_count_partial_as_the_gpu_states_say(api, estate):
    for params in ({"limit": 100}, {"limit": 100, "ordering": "-gpus_used"}):
        for h in _results(api.get("/api/hosts/", params)):
            states = [g["state"] for g in _results(api.get("/api/gpus/", {"host": h["id"], "limit": 100}))]
            assert h["gpus_partial"] == states.count("partial"), (h["name"], params)
            assert h["gpus_used"] == states.count("partial") + states.count("used"), h["name"]
    host = Host.objects.get(name=A100)
    assert api.get(f"/api/hosts/{host.pk}/").json()["gpus_partial"] == 2


def test_the_schema_says_what_each_count_counts(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    for name in ("Host", "Cluster"):
        props = schema[name]["properties"]
        assert props["gpus_partial"]["readOnly"] is True
        assert "gpus_used - gpus_partial" in props["gpus_used"]["description"]
        assert "partly used vGPU" in props["gpus_partial"]["description"]
        assert "NVSwitch" in props["gpus_unavailable"]["description"]


@pytest.mark.parametrize("change", [{"maintenance_mode": True}, {"connection_state": "disconnected"}])
def test_a_partly_held_gpu_on_a_host_plans_cannot_use_counts_in_use(api, estate, change):
    """The A100 host's vGPU GPUs have room left, but none a plan can use once the host is in maintenance or
    disconnected: the host's counts, the GPUs' state and the state filter say in use, none partly used."""
    host = Host.objects.get(name=A100)
    Host.objects.filter(pk=host.pk).update(**change)
    body = api.get(f"/api/hosts/{host.pk}/").json()
    assert (body["gpus_used"], body["gpus_partial"]) == (2, 0)
    gpus = _results(api.get("/api/gpus/", {"host": host.pk}))
    assert sorted((g["state"], g["free_gb"]) for g in gpus if g["consumers"]) == [("used", 0), ("used", 0)]
    assert _results(api.get("/api/gpus/", {"host": host.pk, "state": "partial"})) == []
    assert len(_results(api.get("/api/gpus/", {"host": host.pk, "state": "used"}))) == 2

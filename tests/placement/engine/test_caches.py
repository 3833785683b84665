"""The engine's caches are keyed by value and bounded: a long-lived worker does not grow with the plans it made."""

from __future__ import annotations

import pytest

from placement.engine import gpuset
from placement.engine import plan as plan_module
from placement.engine.lru import ByIdentity, Lru
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest
from placement.engine.synthetic import mark_busy, mixed_cluster


def test_lru_evicts_the_least_recently_used():
    lru: Lru[int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2
    with pytest.raises(ValueError, match="maxsize"):
        Lru(0)


def test_caches_stay_within_their_bounds_over_many_distinct_plans(monkeypatch):
    monkeypatch.setattr(plan_module, "_HOST_MEMO", Lru(40))
    monkeypatch.setattr(gpuset, "_TOPOLOGIES", Lru(5))
    fabric = mixed_cluster(30, seed=3)
    for k in (1, 2, 4):
        for i in range(12):  # different busy GPUs: new GPU states every round
            hosts = tuple(mark_busy(h, [i % len(h.gpus)], vm=f"vm{i}") if h.gpus else h for h in fabric.hosts)
            plan(type(fabric)(hosts), PlacementRequest(gpus_per_vm=k, consumption="passthrough"))
    assert len(plan_module._HOST_MEMO) <= 40
    assert len(gpuset._TOPOLOGIES) <= 5
    assert all(len(t.results) <= gpuset.RESULTS_PER_TOPOLOGY for t in gpuset._TOPOLOGIES._data.values())


def test_by_identity_keeps_a_value_per_object_not_per_equal_value():
    cache: ByIdentity[str] = ByIdentity(2)
    a, b = (1, [2]), (1, [2])  # equal, distinct objects
    cache.put(a, "a")
    assert cache.get(a) == "a" and cache.get(b) is None
    cache.put(b, "b")
    cache.put((3,), "c")  # full: starts over
    assert len(cache) == 1 and cache.get(a) is None
    with pytest.raises(ValueError, match="maxsize"):
        ByIdentity(0)


def test_equal_hosts_built_separately_share_one_memo_entry():
    plan_module.reset_caches()
    request = PlacementRequest(gpus_per_vm=2, consumption="passthrough")
    plan(mixed_cluster(8, seed=1), request)
    size = plan_module.cache_stats()["host_memo"]
    plan(mixed_cluster(8, seed=1), request)  # new objects, same values: no new entries (never keyed by id())
    assert plan_module.cache_stats()["host_memo"] == size


def test_a_bounded_cache_plans_the_same_as_an_unbounded_one(monkeypatch):
    fabric = mixed_cluster(24, seed=5)
    requests = [PlacementRequest(gpus_per_vm=k, consumption="passthrough") for k in (1, 2, 4, 8)]
    plan_module.reset_caches()
    expected = [plan(fabric, r).to_dict() for r in requests]
    monkeypatch.setattr(plan_module, "_HOST_MEMO", Lru(3))
    monkeypatch.setattr(gpuset, "_TOPOLOGIES", Lru(1))
    assert [plan(fabric, r).to_dict() for r in requests] == expected


def test_consumer_readability_is_cached_per_gpu_state_by_value():
    """The check is cached per GPU state; a state that differs only in a consumer's profile is a new key, and an
    equal state built separately gets the same answer."""
    from placement.engine.model import Consumer, evolve
    from placement.engine.synthetic import hgx
    from placement.engine.vgpu import consumer_problem

    gpu = hgx().gpus[0]
    readable = evolve(gpu, consumers=(Consumer("vm-a", "vgpu", "nvidia_h100xm-10c"),))
    unreadable = evolve(gpu, consumers=(Consumer("vm-a", "vgpu", "nvidia_h100xm-13z"),))
    assert consumer_problem(readable) is None
    assert "nvidia_h100xm-13z" in (consumer_problem(unreadable) or "")
    assert consumer_problem(evolve(gpu, consumers=(Consumer("vm-a", "vgpu", "nvidia_h100xm-10c"),))) is None
    assert "cannot be read" in (consumer_problem(evolve(unreadable)) or "")


def test_a_host_object_already_ranked_for_a_request_is_not_evaluated_again(monkeypatch):
    """Plans over an estate see the same host objects again: each is evaluated once per request shape; a host
    replaced by a new object (a reservation, a sync) is evaluated again and its new state is what ranks."""
    plan_module.reset_caches()
    calls: list[str] = []
    evaluate = plan_module._evaluate

    def counting(host, ctx, ctx_hash):
        calls.append(host.name)
        return evaluate(host, ctx, ctx_hash)

    monkeypatch.setattr(plan_module, "_evaluate", counting)
    fabric = mixed_cluster(10, seed=2)
    request = PlacementRequest(gpus_per_vm=2, consumption="passthrough")
    first = plan(fabric, request).to_dict()
    assert len(calls) == len(fabric.hosts)
    calls.clear()
    assert plan(fabric, PlacementRequest(gpus_per_vm=2, consumption="passthrough")).to_dict() == first
    assert calls == []  # an equal request, the same host objects
    best = plan(fabric, request).best
    busy = mark_busy(fabric.host(best.host), [0, 1, 2, 3, 4, 5, 6, 7], vm="vm-x")
    changed = fabric.replace_host(busy)
    after = plan(changed, request)
    assert calls == [best.host]
    assert after.best is not None and after.best.host != best.host
    assert any(r.host == best.host for r in after.rejected)
    plan(fabric, PlacementRequest(gpus_per_vm=4, consumption="passthrough"))  # another request shape
    assert len(calls) == 1 + len(fabric.hosts)


def test_the_per_host_object_caches_stay_within_their_bounds(monkeypatch):
    monkeypatch.setattr(plan_module, "HOST_MEMO_MAX", 7)
    monkeypatch.setattr(plan_module, "_SEEN", Lru(2))
    monkeypatch.setattr(plan_module, "_WHOLE", ByIdentity(7))
    fabric = mixed_cluster(30, seed=3)
    for k in (1, 2, 4, 8):
        for i in range(3):
            hosts = tuple(mark_busy(h, [i % len(h.gpus)], vm=f"vm{i}") if h.gpus else h for h in fabric.hosts)
            plan(type(fabric)(hosts), PlacementRequest(gpus_per_vm=k, consumption="passthrough"))
    assert len(plan_module._SEEN) <= 2
    assert all(len(seen) <= 7 for seen in plan_module._SEEN._data.values())  # each made with HOST_MEMO_MAX
    assert len(plan_module._WHOLE) <= 7


def test_plans_are_the_same_with_the_per_host_object_caches_cleared_before_every_request():
    fabric = mixed_cluster(24, seed=5)
    requests = [PlacementRequest(gpus_per_vm=k, consumption="passthrough") for k in (1, 2, 4, 8, 2, 1)]
    plan_module.reset_caches()
    warm = [plan(fabric, r).to_dict() for r in requests]
    cold = []
    for r in requests:
        plan_module.reset_caches()
        cold.append(plan(fabric, r).to_dict())
    assert warm == cold


def test_a_full_plan_explains_each_host_object_once_per_request_shape(monkeypatch):
    plan_module.reset_caches()
    explained: list[str] = []
    lines = plan_module._lines

    def counting(p):
        explained.append(p.host.name)
        return lines(p)

    monkeypatch.setattr(plan_module, "_lines", counting)
    fabric = mixed_cluster(12, seed=4)
    request = PlacementRequest(gpus_per_vm=2, consumption="passthrough")
    first = plan(fabric, request)
    assert len(explained) == len(first.candidates) > 1
    again = plan(fabric, PlacementRequest(gpus_per_vm=2, consumption="passthrough"))
    assert len(explained) == len(first.candidates)
    assert again.to_dict() == first.to_dict()

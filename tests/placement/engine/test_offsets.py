"""Issue 10, item 4 (engine side): exact placement IDs / MIG slots when imported, inferred ones said so."""

from __future__ import annotations

from dataclasses import replace

from placement.engine.model import Consumer, Fabric, HostState
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest
from placement.engine.synthetic import vgpu_host
from placement.engine.vgpu import timesliced_view

INFERRED = "placement IDs of running vGPUs inferred in VM-name order; import `nvidia-smi vgpu -q` for exact ones"


def _host(*consumers: Consumer) -> HostState:
    host = vgpu_host("esx-01", n=2, board="A100-80GB", vgpu_mode="mixedSize")
    gpus = tuple(replace(g, consumers=consumers) if g.index == 0 else g for g in host.gpus)
    return replace(host, gpus=gpus)


REQ = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-20c")


def test_inferred_offsets_are_said_and_follow_vm_names():
    host = _host(Consumer("vm-b", "vgpu", "grid_a100d-20c"), Consumer("vm-a", "vgpu", "grid_a100d-40c"))
    view = timesliced_view(host.gpus[0])
    starts = {r.vm: r.start_gb for r in view.residents}
    assert starts["vm-a"] is not None and starts["vm-b"] is not None
    # vm-a (40C) is placed first, whatever order the inventory listed the consumers in
    swapped = _host(Consumer("vm-a", "vgpu", "grid_a100d-40c"), Consumer("vm-b", "vgpu", "grid_a100d-20c"))
    assert {r.vm: r.start_gb for r in timesliced_view(swapped.gpus[0]).residents} == starts
    best = plan(Fabric((host,)), REQ).best
    assert any(INFERRED in line for line in best.explanation), best.explanation


def test_exact_offsets_are_used_and_said():
    host = _host(Consumer("vm-a", "vgpu", "grid_a100d-40c", placement_gb=40))
    view = timesliced_view(host.gpus[0])
    assert view.intervals == ((40, 80),)
    best = plan(Fabric((host,)), REQ).best
    assert not any(INFERRED in line for line in best.explanation)
    assert any("exact (imported)" in line for line in best.explanation), best.explanation

"""Trial E findings 6, 8, 9 and 11 (a full GPU): a capture's GPU mode, "exact (imported)" offsets, the CPU/GPU
balance in words, and a GPU full with another profile."""

from __future__ import annotations

import re
from dataclasses import replace

from placement.engine.evacuate import VmSize, plan_evacuation
from placement.engine.explain import apart_text, compare
from placement.engine.model import Consumer, Fabric, HostState
from placement.engine.plan import OFFSETS_EXACT, apply_candidate, plan
from placement.engine.request import PlacementRequest
from placement.engine.smi_host import build_smi_host, plan_smi_host
from placement.engine.synthetic import vgpu_host

# ------------------------------------------------------------------ 6: a capture says nothing of the GPU mode

# a100x4-nv.txt: 4 A100 PCIe GPUs forming two NV12 pairs, joined by NODE
PAIRS = [
    (0, 1, "NV12", 300.0, 12),
    (2, 3, "NV12", 300.0, 12),
    (0, 2, "NODE", 31.5, 0),
    (0, 3, "NODE", 31.5, 0),
    (1, 2, "NODE", 31.5, 0),
    (1, 3, "NODE", 31.5, 0),
]
MODE_CAUTION = "caution: GPU mode not in the capture: planned as if its GPUs were in {} mode"


def _capture(busy=(), request: PlacementRequest | None = None, board: str | None = "A100-80GB"):
    profile = request.vgpu_profile if request is not None else None
    memory = 80 * 1024 if board else 0
    return build_smi_host(
        PAIRS, dict.fromkeys(range(4), 0), busy=busy, board=board, memory_mb=memory, vgpu_profile=profile
    )


def test_a_device_group_is_planned_on_a_bridged_pair_with_a_mode_caution():
    request = PlacementRequest(2, "device-group", "Nvidia:2@grid_a100d-80c%NVLink").validate()
    result = plan_smi_host(_capture(request=request), request)
    assert not result.rejected, result.rejected
    best = result.candidates[0]
    assert best.bottleneck == ("NV12", 300.0)
    assert not any("sharedDirect) mode" in r for r in best.explanation if not r.startswith("caution:"))
    assert any(line.startswith(MODE_CAUTION.format("vGPU (sharedDirect, same-size)")) for line in best.explanation)
    assert any("Host > Configure > Graphics" in line for line in best.explanation)


def test_a_vgpu_is_planned_and_a_busy_gpu_holds_a_full_size_vgpu():
    request = PlacementRequest(1, "vgpu", "grid_a100d-40c").validate()
    result = plan_smi_host(_capture(busy=(0, 1, 2), request=request), request)
    assert [g.index for g in result.candidates[0].gpus] == [3]
    all_busy = plan_smi_host(_capture(busy=(0, 1, 2, 3), request=request), request)
    (rejection,) = all_busy.rejected
    assert "holds 1 x grid_a100d-80c (VM busy), its maximum 1" in rejection.reasons[0]
    assert not any("sharedDirect" in r or "passthrough" in r for r in rejection.reasons)


def test_mig_is_planned_in_mig_mode_and_no_offset_is_called_imported():
    request = PlacementRequest(1, "mig", "grid_a100d-3-40c").validate()
    best = plan_smi_host(_capture(busy=(0,), request=request), request).candidates[0]
    assert best.gpus[0].mig_slot is not None
    assert any(
        line.startswith(MODE_CAUTION.format("MIG-backed vGPU (sharedDirect, MIG enabled)")) for line in best.explanation
    )
    assert not any("imported" in line or "inferred" in line for line in best.explanation), best.explanation


def test_passthrough_stays_as_it_was_without_a_caution():
    request = PlacementRequest(2, "passthrough").validate()
    best = plan_smi_host(_capture(busy=(0,)), request).candidates[0]
    assert [g.index for g in best.gpus] == [2, 3]
    assert not any("GPU mode not in the capture" in line for line in best.explanation)


def test_a_vgpu_on_a_capture_without_a_board_is_refused_with_the_reason():
    request = PlacementRequest(1, "vgpu", "grid_a100d-40c").validate()
    (rejection,) = plan_smi_host(_capture(board=None), request).rejected
    assert "does not say which GPU board" in rejection.reasons[0] and "--board" in rejection.reasons[0]


# ------------------------------------------------------------------ 8: "exact (imported)" only for imported offsets


def _mixed(name: str, *consumers: Consumer, cpu: int = 64) -> HostState:
    host = vgpu_host(name, n=2, board="A100-80GB", vgpu_mode="mixedSize", cpu_free=cpu, memory_free_mb=1 << 20)
    return replace(host, gpus=tuple(replace(g, consumers=consumers) if g.index == 0 else g for g in host.gpus))


REQ20 = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-20c")


def test_offsets_placed_by_the_plan_are_not_called_imported():
    fabric = Fabric((_mixed("esx-01"),))
    first = plan(fabric, REQ20).best
    after = apply_candidate(fabric, first, REQ20, "web-1")  # an evacuated VM keeps its own name
    best = plan(after, REQ20).best
    assert not any(OFFSETS_EXACT in line for line in best.explanation), best.explanation
    assert any(
        "placement IDs and MIG slots of 1 vGPU this plan places here are the advisor's own choice" in line
        for line in best.explanation
    ), best.explanation


def test_imported_offsets_are_still_exact_and_said_beside_planned_ones():
    fabric = Fabric((_mixed("esx-01", Consumer("vm-a", "vgpu", "grid_a100d-40c", placement_gb=40)),))
    assert any(line == OFFSETS_EXACT for line in plan(fabric, REQ20).best.explanation)
    after = apply_candidate(fabric, plan(fabric, REQ20).best, REQ20, "web-1")
    note = next(line for line in plan(after, REQ20).best.explanation if "placement IDs" in line)
    assert note.startswith(OFFSETS_EXACT + "; the placement IDs and MIG slots of 1 vGPU this plan places here")


def test_an_evacuation_does_not_call_its_own_placements_imported():
    src = _mixed("esx-src", Consumer("a", "vgpu", "grid_a100d-20c"), Consumer("b", "vgpu", "grid_a100d-20c"))
    target = vgpu_host("esx-t", n=1, board="A100-80GB", vgpu_mode="mixedSize", cpu_free=64, memory_free_mb=1 << 20)
    result = plan_evacuation(Fabric((src, target)), "esx-src", sizes={"a": VmSize(4, 8192), "b": VmSize(4, 8192)})
    lines = [line for m in result.moves if m.target for line in m.target.explanation]
    assert len([m for m in result.moves if m.target]) == 2
    assert not any("exact (imported)" in line for line in lines), lines


# ------------------------------------------------------------------ 9: the CPU/GPU balance as a factor


def test_the_balance_is_said_as_a_factor_not_a_log():
    cpu_poor, cpu_rich = _mixed("esx-01", cpu=8), _mixed("esx-02", cpu=128)
    request = PlacementRequest(1, "vgpu", "grid_a100d-40c", vcpus=4, memory_mb=16384)
    best, runner = plan(Fabric((cpu_poor, cpu_rich)), request).candidates[:2]
    line = next(x for x in best.explanation if x.startswith("CPU/GPU balance:"))
    # 160 GB for 8 vCPUs = 20 GB per free vCPU; the VM: 40 GB / 4 vCPUs = 10
    assert line.endswith("(20.0 GB per free vCPU), the VM needs 10.0 GB per vCPU: 2.0x apart"), line
    beat = next(x for x in best.explanation if x.startswith("beats esx-02"))
    assert beat == (
        "beats esx-02: its free vGPU framebuffer per free vCPU is closer to the VM's 10.0 GB per vCPU: 20.0 GB "
        "(2.0x apart); the runner-up: 1.2 GB (8.0x apart)"
    ), beat
    assert not re.search(r"mismatch|\d\.\d{3}", " ".join(best.explanation + runner.explanation))


def test_apart_text_tells_close_factors_apart():
    assert apart_text(2.04) == "2.0x apart"
    assert apart_text(2.04, 2.01) == "2.04x apart"
    assert apart_text(1.02) == "the same proportion"
    detail = compare(
        "beats", "esx-02", (0, 0, 0, 0, 0, 0, 0, 0, -0.693), (0, 0, 0, 0, 0, 0, 0, 0, -2.079), *[("LOCAL", 0)] * 2, 1, 1
    )
    assert "2.0x apart" in detail and "8.0x apart" in detail


# ------------------------------------------------------------------ 11: a GPU full with another profile


def test_a_gpu_full_with_an_80c_is_said_full_for_a_40c_request():
    host = vgpu_host("esx-01", n=2, board="A100-80GB", cpu_free=64, memory_free_mb=1 << 20)
    full = Consumer("t1d-b", "vgpu", "grid_a100d-80c")
    host = replace(host, gpus=tuple(replace(g, consumers=(full,)) for g in host.gpus))
    request = PlacementRequest(1, "vgpu", "grid_a100d-40c")
    (rejection,) = plan(Fabric((host,)), request).rejected
    text = "; ".join(rejection.reasons)
    assert "2 of 2 GPUs are full with another profile, e.g. GPU " in text
    assert text.endswith("holds 1 x grid_a100d-80c (VM t1d-b), its maximum 1"), text
    assert "locked" not in text
    # one GPU alone keeps its own reason, in the evacuation's wording
    one = replace(host, gpus=(host.gpus[0],))
    (alone,) = plan(Fabric((one,)), request).rejected
    assert any(r.endswith("holds 1 x grid_a100d-80c (VM t1d-b), its maximum 1") for r in alone.reasons), alone


def test_a_gpu_locked_but_not_full_is_still_said_locked():
    host = vgpu_host("esx-01", n=1, board="A100-80GB", cpu_free=64, memory_free_mb=1 << 20)
    host = replace(host, gpus=(replace(host.gpus[0], consumers=(Consumer("vm-1", "vgpu", "grid_a100d-10c"),)),))
    (rejection,) = plan(Fabric((host,)), PlacementRequest(1, "vgpu", "grid_a100d-40c")).rejected
    assert any("is locked to grid_a100d-10c by vm-1 (same-size mode)" in r for r in rejection.reasons)

"""Dynamic DirectPath I/O matches a GPU's hardware label (DOMAIN.md 1): a request may name the label, and an
evacuated Dynamic DirectPath VM keeps to GPUs of its GPUs' label (it was moved onto a GPU of another label, which
vSphere would not power on)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement.engine.evacuate import plan_evacuation
from placement.engine.model import Consumer, Fabric, HostState
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest, RequestError
from placement.engine.synthetic import nvl_pairs


def labelled(host: HostState, label: str) -> HostState:
    return replace(host, gpus=tuple(replace(g, hardware_label=label) for g in host.gpus))


def test_a_dynamic_directpath_request_takes_only_gpus_of_its_label():
    fabric = Fabric((labelled(nvl_pairs("render"), "render-pool"), labelled(nvl_pairs("llm"), "llm-pool")))
    request = PlacementRequest(gpus_per_vm=2, consumption="dynamic-passthrough", hardware_label="llm-pool").validate()
    result = plan(fabric, request)
    assert [c.host for c in result.candidates] == ["llm"]
    (rejected,) = result.rejected
    assert rejected.host == "render"
    assert "8 of 8 GPUs have another hardware label" in rejected.reasons[1]
    assert "'render-pool', not 'llm-pool'" in rejected.reasons[1]
    unlabelled = PlacementRequest(gpus_per_vm=2, consumption="dynamic-passthrough").validate()
    assert {c.host for c in plan(fabric, unlabelled).candidates} == {"render", "llm"}


@pytest.mark.parametrize("consumption", ["passthrough", "vgpu"])
def test_only_dynamic_directpath_takes_a_label(consumption):
    profile = "grid_h100l-94c" if consumption == "vgpu" else None
    with pytest.raises(RequestError) as exc:
        PlacementRequest(gpus_per_vm=1, consumption=consumption, profile=profile, hardware_label="x").validate()
    assert exc.value.field == "hardware_label"


def test_an_evacuated_dynamic_directpath_vm_keeps_to_its_label():
    source = labelled(nvl_pairs("src"), "llm-pool")
    source = replace(
        source,
        gpus=tuple(
            replace(g, consumers=(Consumer("dyn1", "dynamic-passthrough"),)) if g.index == 0 else g for g in source.gpus
        ),
    )
    other_label = labelled(nvl_pairs("render"), "render-pool")
    result = plan_evacuation(Fabric((source, other_label)), source.name)
    (move,) = result.moves
    assert move.target is None, move
    assert any("'render-pool', not 'llm-pool'" in r for r in move.reasons)
    same_label = labelled(nvl_pairs("llm"), "llm-pool")
    result = plan_evacuation(Fabric((source, other_label, same_label)), source.name)
    (move,) = result.moves
    assert move.target is not None and move.target.host == "llm"
    assert any("kept to GPUs labelled 'llm-pool'" in r for r in move.reasons)

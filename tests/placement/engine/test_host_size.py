"""Hosts above the size the exact GPU-set search handles are rejected with the reason, quickly: an uploaded capture
of a 24-GPU box held one 2-GPU plan for two minutes (an expert's finding D11)."""

from __future__ import annotations

import pytest

from gpucatalog.limits import MAX_PLANNED_GPUS
from inventory.topology.smi import parse_smi_topology
from placement.engine import synthetic
from placement.engine.model import Fabric
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest


def capture(n: int) -> str:
    """An ``nvidia-smi topo -m`` matrix of ``n`` GPUs on two sockets (NODE within one, SYS across)."""
    names = [f"GPU{i}" for i in range(n)]
    half = n // 2
    lines = ["\t" + "\t".join(names) + "\tCPU Affinity\tNUMA Affinity"]
    for i in range(n):
        cells = ["X" if i == j else ("NODE" if (i < half) == (j < half) else "SYS") for j in range(n)]
        node = 0 if i < half else 1
        lines.append(f"GPU{i}\t" + "\t".join(cells) + f"\t{node * 32}-{node * 32 + 31}\t{node}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("gpus", [1, 2, 8])
def test_a_host_with_more_gpus_than_planned_is_rejected_naming_the_limit(gpus):
    big = synthetic.l40s_2socket("big", n=24)
    small = synthetic.l40s_2socket("small", n=8)
    result = plan(Fabric((big, small)), PlacementRequest(gpus_per_vm=gpus, consumption="passthrough"))
    assert result.best is not None and result.best.host == "small"
    (rejected,) = result.rejected
    assert rejected.host == "big"
    assert rejected.reasons[0].startswith(
        f"host has 24 GPUs: the advisor ranks GPU sets on hosts of up to {MAX_PLANNED_GPUS}"
    )


def test_a_host_of_sixteen_gpus_is_planned():
    result = plan(
        Fabric((synthetic.l40s_2socket("sixteen", n=16),)), PlacementRequest(gpus_per_vm=2, consumption="passthrough")
    )
    assert result.best is not None


def test_a_capture_above_the_limit_says_plans_reject_it():
    topology = parse_smi_topology(capture(20))
    assert len(topology.gpus) == 20
    assert any(
        w.startswith("the capture shows 20 GPUs; plans reject such a host (host has 20 GPUs") for w in topology.warnings
    )
    assert not any("plans reject" in w for w in parse_smi_topology(capture(16)).warnings)

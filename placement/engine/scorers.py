"""Soft preferences. Each scorer is a small class with a ``name`` returning a ``Score`` (value + explain).

The ranking key of a proposal is the tuple of its scorers' values in ``SCORERS`` order, compared
lexicographically (higher is better): interconnect bottleneck, NUMA span, PCIe proximity, what the
GPU-set leaves behind, vGPU/MIG fragmentation, then CPU/memory headroom (DRS-like) last.
"""

from __future__ import annotations

from dataclasses import dataclass

from placement.engine.explain import fmt_gbps, leave_text
from placement.engine.gpuset import SetScore
from placement.engine.model import UNKNOWN_CAPACITY, HostState
from placement.engine.request import PlacementRequest
from placement.engine.result import GpuChoice


@dataclass(frozen=True)
class Proposal:
    """One host's best answer to the request, before ranking."""

    host: HostState
    request: PlacementRequest
    choices: tuple[GpuChoice, ...]
    set_score: SetScore | None
    numa_nodes: tuple[int, ...]
    frag: tuple[float, ...] = ()  # higher is better
    frag_text: str = ""
    policy_text: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Score:
    name: str
    value: object
    explain: str


class InterconnectScorer:
    name = "Interconnect"

    def score(self, p: Proposal) -> Score:
        s = p.set_score
        if s is None or len(p.choices) < 2:
            return Score(self.name, 0.0, "")
        link = f"{s.bottleneck_label} {fmt_gbps(s.bottleneck_gbps)} GB/s"
        text = f"bottleneck {link} (best ring through {len(p.choices)} GPUs)"
        if p.request.fractional:
            text += "; fractional vGPUs do not use NVLink P2P"
        return Score(self.name, s.bottleneck_gbps, text)


class NumaScorer:
    name = "Numa"

    def score(self, p: Proposal) -> Score:
        nodes = p.numa_nodes
        if not nodes:
            return Score(self.name, 0, "NUMA node unknown")
        if len(nodes) == 1:
            return Score(self.name, -1, f"NUMA node {nodes[0]}: place the VM's vCPUs and memory there")
        return Score(self.name, -len(nodes), f"spans NUMA nodes {', '.join(map(str, nodes))}")


class PcieProximityScorer:
    name = "PcieProximity"

    def score(self, p: Proposal) -> Score:
        s = p.set_score
        if s is None or len(p.choices) < 2:
            return Score(self.name, 0, "")
        return Score(self.name, -s.pcie_cost, f"PCIe proximity cost {s.pcie_cost} (sum of link-class ranks over pairs)")


class LeaveBehindScorer:
    name = "LeaveBehind"

    def score(self, p: Proposal) -> Score:
        s = p.set_score
        if s is None:
            return Score(self.name, (), "")
        return Score(self.name, s.leave_loss, leave_text(s.leave, nvswitch=p.host.nvswitch))


class FragmentationScorer:
    name = "Fragmentation"

    def score(self, p: Proposal) -> Score:
        return Score(self.name, p.frag, p.frag_text)


class PolicyScorer:
    """Explains the host's assignment policy; it decides the GPU, not the host ranking."""

    name = "AssignmentPolicy"

    def score(self, p: Proposal) -> Score:
        return Score(self.name, 0, p.policy_text)


class HeadroomScorer:
    name = "Headroom"

    def score(self, p: Proposal) -> Score:
        cpu = p.host.cpu_free - p.request.vcpus
        mem = p.host.memory_free_mb - p.request.memory_mb
        if p.host.cpu_free >= UNKNOWN_CAPACITY:
            return Score(self.name, (mem, cpu), "CPU/memory headroom unknown (topology capture only)")
        return Score(self.name, (mem, cpu), f"headroom after admission: {cpu} vCPUs, {mem // 1024} GB memory")


SCORERS = (
    InterconnectScorer(),
    NumaScorer(),
    PcieProximityScorer(),
    LeaveBehindScorer(),
    FragmentationScorer(),
    PolicyScorer(),
    HeadroomScorer(),
)


def score_all(p: Proposal) -> tuple[tuple, tuple[str, ...]]:
    """(ranking key, explain lines) for a proposal."""
    scores = [s.score(p) for s in SCORERS]
    return tuple(s.value for s in scores), tuple(s.explain for s in scores if s.explain)

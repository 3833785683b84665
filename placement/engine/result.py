"""What ``plan`` returns: candidates (best first), rejections with reasons, and the DESIGN.md JSON shape."""

from __future__ import annotations

from dataclasses import dataclass, field

from placement.engine.explain import LOCAL_LABEL, UNUSED_LABEL, link_text

# Candidate.bottleneck label of vGPUs the host assigns one at a time (consumption "vgpu", several GPUs): they get no
# NVLink P2P whatever links their GPUs share, so no link is claimed for them
SEPARATE_LABEL = "SEPARATE"
SEPARATE_TEXT = "no NVLink P2P (separately assigned vGPUs)"
NO_LINK_LABELS = (LOCAL_LABEL, UNUSED_LABEL, SEPARATE_LABEL)


def candidate_link_text(label: str, gbps: float) -> str:
    """``explain.link_text`` that also words the label of separately assigned vGPUs."""
    return SEPARATE_TEXT if label == SEPARATE_LABEL else link_text(label, gbps)


@dataclass(frozen=True)
class GpuChoice:
    pci_id: str
    index: int
    placement_gb: int | None = None  # mixed-size start offset
    mig_slot: int | None = None
    profile: str | None = None


@dataclass(frozen=True)
class Candidate:
    host: str
    vm_index: int
    gpus: tuple[GpuChoice, ...]
    score: float  # monotone in the ranking key, higher is better; integer part = bottleneck GB/s
    bottleneck: tuple[str, float]  # ("NV18", 450.0); ("LOCAL", 0.0) for one GPU; ("UNUSED", 0.0) for fractional vGPUs
    numa_nodes: tuple[int, ...]
    explanation: tuple[str, ...]
    key: tuple = field(default=(), compare=False, repr=False)  # the lexicographic ranking key
    host_id: int | None = None  # the inventory's primary key (None for a host known only from a capture)
    vcenter: str = ""  # host names are unique only within one vCenter

    @property
    def ident(self) -> tuple:
        """Same as ``HostState.ident`` of the candidate's host."""
        return ("pk", self.host_id) if self.host_id is not None else ("name", self.vcenter, self.host)

    @property
    def uses_interconnect(self) -> bool:
        """Whether the VM's GPUs talk over a link: not for one GPU, nor for fractional vGPUs (no NVLink P2P)."""
        return len(self.gpus) > 1 and self.bottleneck[0] not in NO_LINK_LABELS

    def to_dict(self) -> dict:
        """JSON shape; ``bottleneck`` is null when no link is used (a single GPU, fractional vGPUs) and
        ``interconnect`` says it in words: "single GPU", "interconnect not used (fractional vGPUs)", "no NVLink P2P
        (separately assigned vGPUs)", or
        "NV12 300 GB/s" for a set."""
        linked = self.uses_interconnect
        return {
            "host": self.host,
            "host_id": self.host_id,
            "vcenter": self.vcenter,
            "gpus": [_gpu_dict(g) for g in self.gpus],
            "score": self.score,
            "bottleneck": {"label": self.bottleneck[0], "gbps": self.bottleneck[1]} if linked else None,
            "interconnect": candidate_link_text(*self.bottleneck) if len(self.gpus) > 1 else "single GPU",
            "numa_nodes": list(self.numa_nodes),
            "explanation": list(self.explanation),
        }


def _gpu_dict(g: GpuChoice) -> dict:
    out: dict = {"pci_id": g.pci_id, "index": g.index}
    if g.profile is not None:
        out["profile"] = g.profile
    if g.placement_gb is not None:
        out["placement_gb"] = g.placement_gb
    if g.mig_slot is not None:
        out["mig_slot"] = g.mig_slot
    return out


@dataclass(frozen=True)
class Rejection:
    host: str
    reasons: tuple[str, ...]
    host_id: int | None = None
    vcenter: str = ""

    def to_dict(self) -> dict:
        return {"host": self.host, "host_id": self.host_id, "vcenter": self.vcenter, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Plan:
    """For ``vms == 1`` the candidates are alternative hosts, best first.

    For ``vms > 1`` ``assignment`` holds the joint placement (one Candidate per VM, ``vm_index`` 0..n-1,
    computed greedily best-first with the earlier replicas reserved); ``candidates`` still lists the
    alternatives for the first VM, and ``unplaced`` says why a replica found no room.
    """

    candidates: tuple[Candidate, ...]
    rejected: tuple[Rejection, ...]
    assignment: tuple[Candidate, ...] = ()
    unplaced: tuple[str, ...] = ()

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict:
        out: dict = {
            "candidates": [c.to_dict() for c in self.candidates],
            "rejected": [r.to_dict() for r in self.rejected],
        }
        if self.assignment or self.unplaced:
            out["assignment"] = [{"vm_index": c.vm_index, **c.to_dict()} for c in self.assignment]
            out["unplaced"] = list(self.unplaced)
        return out

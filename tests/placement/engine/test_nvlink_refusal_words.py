"""A VM that asks for NVLink on a host where no such set is free is told what NVLink the host has (Trial O).

"no 2 eligible GPUs form an NVLink ring" was the whole reason on a host of PCIe cards without NVLink (L40S), and on
bridged pairs when four GPUs were asked for: an admin reads neither "ring" nor why; the reason now says that the
eligible GPUs have no NVLink at all, or how many of them NVLink joins at most."""

from placement.engine import synthetic
from placement.engine.model import Fabric
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest


def _reasons(host, gpus: int) -> str:
    result = plan(Fabric((host,)), PlacementRequest(gpus_per_vm=gpus, consumption="passthrough", interconnect="nvlink"))
    assert result.best is None
    (rejected,) = result.rejected
    return " ".join(rejected.reasons)


def test_a_host_without_nvlink_says_its_gpus_have_none():
    reason = _reasons(synthetic.l40s_2socket("l40s", n=8), 2)
    assert "ring" not in reason
    assert "no NVLink" in reason


def test_bridged_pairs_say_how_many_gpus_nvlink_joins():
    reason = _reasons(synthetic.nvl_pairs("nvl", n=8), 4)
    assert "ring" not in reason
    assert "NVLink joins at most 2 of the eligible GPUs" in reason


def test_nvlinked_gpus_that_form_no_ring_are_not_told_nvlink_joins_too_few():
    """On the DGX-1 mesh, GPUs 1-0-4-7 are one NVLink chain but no ring: "NVLink joins at most 4" would contradict
    the refusal of a 4-GPU VM."""
    from placement.engine import gpuset

    host = synthetic.dgx1_v100()
    topo, order = gpuset.topology_for(host)
    free = gpuset.mask_of(order, [host.gpus[i].pci_id for i in (0, 1, 4, 7)])
    result = gpuset._search(topo, free, 4, "nvlink", True)
    assert result.best is None
    assert result.reason == (
        "no 4 eligible GPUs form an NVLink ring: 4 of them are joined by NVLink, but no 4 of those close a ring"
    )

"""A GPU model the catalog does not know gets PCIe Gen4 figures: a plan whose bottleneck is such a PCIe path says
that the figure is assumed (Trial O: an RTX PRO 6000 Blackwell pair read "PIX 31.5 GB/s" as a fact; it is Gen5)."""

import dataclasses

from placement.engine import synthetic
from placement.engine.model import Fabric
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest

MODEL = "NVIDIA RTX PRO 6000 Blackwell Server Edition"
CAUTION = f"caution: {MODEL} is not in the catalog, so its PCIe generation is not known: the PCIe figures take Gen4 x16"


def unknown_board_host():
    host = synthetic.l40s_2socket("rtx", n=4)
    gpus = tuple(dataclasses.replace(g, board=None, model=MODEL) for g in host.gpus)
    return dataclasses.replace(host, gpus=gpus)


def test_a_pcie_set_of_gpus_the_catalog_does_not_know_says_its_figure_is_assumed():
    best = plan(Fabric((unknown_board_host(),)), PlacementRequest(gpus_per_vm=2, consumption="passthrough")).best
    assert best is not None and CAUTION in best.explanation


def test_no_caution_where_no_pcie_figure_is_given_or_the_board_is_known():
    one = plan(Fabric((unknown_board_host(),)), PlacementRequest(gpus_per_vm=1, consumption="passthrough")).best
    assert one is not None and not any("is not in the catalog" in line for line in one.explanation)
    known = synthetic.l40s_2socket("l40s", n=4)
    two = plan(Fabric((known,)), PlacementRequest(gpus_per_vm=2, consumption="passthrough")).best
    assert two is not None and not any("is not in the catalog" in line for line in two.explanation)


def test_a_capture_without_a_board_says_to_name_it():
    from placement.engine.model import CAPTURE_MODEL

    host = unknown_board_host()
    host = dataclasses.replace(host, gpus=tuple(dataclasses.replace(g, model=CAPTURE_MODEL) for g in host.gpus))
    best = plan(Fabric((host,)), PlacementRequest(gpus_per_vm=2, consumption="passthrough")).best
    assert best is not None and (
        "caution: the capture does not say which board its GPUs are (plan --board), so the PCIe figures take Gen4 x16"
        in best.explanation
    )

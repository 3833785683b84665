"""A time-sliced vGPU on a board whose NVIDIA vGPU table the catalog lacks is planned with a caution (Trial O).

NVIDIA publishes time-sliced vGPU types for the HGX B200 (NVIDIA AI Enterprise, "NVIDIA vGPU Types Reference":
Blackwell, NVIDIA B200 HGX); the catalog has none for B200-180GB, so any size parsed (grid_b200-37c as well as a real
one) and was planned with the per-GPU maximum taken from the framebuffer alone, stated as if known."""

from placement.engine import synthetic
from placement.engine.model import Fabric
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest


def _explanation(board: str, profile: str) -> str:
    request = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile=profile)
    result = plan(Fabric((synthetic.hgx("hgx", board=board),)), request)
    assert result.best is not None
    return " ".join(result.best.explanation)


def test_a_profile_missing_from_the_catalogs_table_is_planned_with_a_caution():
    text = _explanation("B200-180GB", "grid_b200-37c")
    assert "caution: the catalog has no NVIDIA time-sliced vGPU table for B200-180GB" in text
    assert "up to 4 per GPU assumed" in text


def test_a_profile_of_the_catalogs_table_gets_no_such_caution():
    assert "time-sliced vGPU table" not in _explanation("H200-141GB", "grid_h200x-35c")

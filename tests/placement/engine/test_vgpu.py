from dataclasses import replace
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from gpucatalog.catalog import load_catalog
from gpucatalog.profiles import parse_profile_name
from placement.engine import vgpu
from placement.engine.model import Consumer, Fabric
from placement.engine.plan import apply_candidate, plan
from placement.engine.request import PlacementRequest
from placement.engine.synthetic import vgpu_host


def _run(policy, sizes):
    fabric = Fabric((vgpu_host("esx", n=2, board="A100-80GB", policy=policy),))
    placed = []
    for i, gb in enumerate(sizes):
        req = PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile=f"grid_a100d-{gb}c")
        p = plan(fabric, req)
        if not p.candidates:
            placed.append((gb, None, p.rejected[0].reasons))
            continue
        best = p.candidates[0]
        placed.append((gb, best.gpus[0].pci_id, ()))
        fabric = apply_candidate(fabric, best, req, f"vm{i}")
    return placed


def test_spread_rejects_what_pack_places():
    spread = _run("performance", [10, 10, 20])
    assert spread[0][1] != spread[1][1]  # the two 10C VMs land on different GPUs
    assert spread[2][1] is None
    assert any("locked to grid_a100d-10c" in r for r in spread[2][2])
    pack = _run("consolidation", [10, 10, 20])
    assert pack[0][1] == pack[1][1]
    assert pack[2][1] is not None and pack[2][1] != pack[0][1]


def test_same_size_lock_rejects_8c_on_gpu_holding_10c():
    host = vgpu_host("esx", n=1, board="A100-80GB")
    gpu = host.gpus[0]
    host = replace(host, gpus=(replace(gpu, consumers=(Consumer("chat-a", "vgpu", "grid_a100d-10c"),)),))
    p = plan(Fabric((host,)), PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-8c"))
    assert not p.candidates
    assert p.rejected[0].reasons == (f"GPU {gpu.pci_id} is locked to grid_a100d-10c by chat-a (same-size mode)",)
    view = vgpu.timesliced_view(host.gpus[0])
    assert view.free_gb == 70


def test_h100_16c_equal_size_cap_is_physical():
    board = load_catalog().boards["H100-80GB"]
    assert board.timesliced[16].max_equal == 6
    assert vgpu.equal_size_max(board, 80, 16) == 5


def _mixed_view(board="H100-80GB"):
    b = load_catalog().boards[board]
    return vgpu.TimeslicedGpu("0000:3b:00.0", 0, b, b.framebuffer_gb, "mixedSize")


def test_mixed_16_16_20_16_on_h100_leaves_12_gb_unusable():
    view = _mixed_view()
    for i, gb in enumerate((16, 16, 20, 16)):
        view = vgpu.place(view, f"vm{i}", parse_profile_name(f"grid_h100-{gb}c"))
        assert view is not None
    # 16C starts at 0, 24, 40, 64; 20C at 0, 20, 40, 60: the host takes [0,16) [24,40) [40,60) [64,80)
    assert view.intervals == ((0, 16), (24, 40), (40, 60), (64, 80))
    assert view.free_gb == 12  # holes [16,24) and [60,64)
    assert vgpu.siloed_gb(view, sizes=(16, 20)) == 12  # none of the sizes in play fits
    assert vgpu.siloed_gb(view, sizes=(8, 10, 16, 20, 40)) == 12  # nor 8C/10C at their placement IDs
    # counting every H100 profile, 4C instances at IDs 16, 20 and 60 could still fill the holes
    assert vgpu.siloed_gb(view) == 0
    assert vgpu.mixed_refusal(view, parse_profile_name("grid_h100-10c"))[0] == "placement-id"


def test_mixed_10_20_40_tile_perfectly():
    view = _mixed_view("A100-80GB")
    for i, gb in enumerate((40, 20, 10, 10)):
        view = vgpu.place(view, f"vm{i}", parse_profile_name(f"grid_a100d-{gb}c"))
    assert view.free_gb == 0 and vgpu.siloed_gb(view) == 0


H100_SIZES = sorted(load_catalog().boards["H100-80GB"].timesliced)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(H100_SIZES), max_size=25))
def test_mixed_packer_never_overlaps_or_exceeds_maxima(sizes):
    view = _mixed_view()
    board = view.board
    for i, gb in enumerate(sizes):
        after = vgpu.place(view, f"vm{i}", parse_profile_name(f"grid_h100-{gb}c"))
        if after is not None:
            view = after
    ivs = view.intervals
    for (_, b1), (a2, _) in pairwise(ivs):
        assert b1 <= a2
    assert all(b <= 80 for _, b in ivs)
    for r in view.residents:
        assert r.start_gb in board.timesliced[r.size_gb].placement_ids_gb
    for gb in H100_SIZES:
        assert sum(1 for r in view.residents if r.size_gb == gb) <= board.timesliced[gb].max_mixed
    assert 0 <= vgpu.siloed_gb(view) <= view.free_gb


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(H100_SIZES), max_size=25), st.sampled_from(["performance", "consolidation"]))
def test_same_size_never_overcommits(sizes, policy):
    b = load_catalog().boards["H100-80GB"]
    views = [vgpu.TimeslicedGpu(f"g{i}", i, b, 80, "sameSize") for i in range(2)]
    for i, gb in enumerate(sizes):
        profile = parse_profile_name(f"grid_h100-{gb}c")
        chosen = vgpu.choose_same_size_gpu(views, profile, policy)
        if chosen is None:
            continue
        views = [v.with_resident(vgpu.Resident(f"vm{i}", profile.name, gb, None)) if v is chosen else v for v in views]
    for v in views:
        assert v.used_gb <= 80
        assert len({r.profile for r in v.residents}) <= 1
        if v.residents:
            assert v.count() <= vgpu.equal_size_max(b, 80, v.residents[0].size_gb)


def test_a_request_is_the_type_name_the_host_offers_not_any_spelling_of_it():
    """The live planner compares type names as vSphere does: a GPU locked to nvidia_h100xm-8c takes another
    nvidia_h100xm-8c; grid_h100-8c (the catalog's same board and size, another driver's spelling) is a name this
    host does not offer, refused as such, not joined onto the GPU. (The what-if, whose catalog entries name a size,
    takes the host's spelling instead: tests/placement/engine/test_simulate.py.)"""
    from placement.engine.model import evolve

    host = vgpu_host("esx-00-001", n=1, board="H100-80GB")
    gpu = evolve(host.gpus[0], consumers=(Consumer("vm-02586", "vgpu", profile="nvidia_h100xm-8c"),))
    offered = frozenset(f"nvidia_h100xm-{gb}c" for gb in (4, 8, 10, 16, 20, 40, 80))
    fabric = Fabric((evolve(host, gpus=(gpu,), offered_profiles=offered),))
    joins = plan(fabric, PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="nvidia_h100xm-8c"))
    assert [c.gpus[0].pci_id for c in joins.candidates] == [gpu.pci_id]
    other = plan(fabric, PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_h100-8c"))
    assert not other.candidates
    assert other.rejected[0].reasons == (
        "host does not offer grid_h100-8c (vCenter lists nvidia_h100xm-4c ... -80c for H100-80GB)",
    )


def test_a_mixed_size_start_is_stated_as_fact_only_where_nvidia_publishes_placement_ids():
    """A30-24GB has no published mixed-size placement IDs (catalog ``mixed_placement_ids_gb: null``): the size-aligned
    start the engine uses is an assumption and says so; A100-80GB's IDs are NVIDIA's and stated plainly."""
    boards = load_catalog().boards
    assert vgpu.start_text(boards["A100-80GB"], 20, 40) == "placement ID 40 GB"
    assert vgpu.start_text(boards["A30-24GB"], 6, 0) == (
        "offset 0 GB, assumed: NVIDIA publishes no mixed-size placement IDs for A30-24GB, "
        "so size-aligned starts are used"
    )
    assert "assumed" in vgpu.start_text(boards["H200-141GB"], 35, 35)
    assert "placement ID 0 GB" not in vgpu.start_text(boards["A30-24GB"], 6, 0)


def test_a_mixed_size_refusal_on_a_board_without_placement_ids_calls_its_starts_assumed():
    host = vgpu_host("a30mx", n=1, board="A30-24GB", vgpu_mode="mixedSize")
    held = (Consumer("a", "vgpu", "grid_a30-6c", placement_gb=6), Consumer("b", "vgpu", "grid_a30-6c", placement_gb=12))
    gpu = replace(host.gpus[0], consumers=held)
    code, reason = vgpu.mixed_refusal(vgpu.timesliced_view(gpu), parse_profile_name("grid_a30-12c"))
    assert code == "placement-id"
    assert reason == (
        "GPU 0000:18:00.0 has 12 GB free but no free 12 GB range at the assumed size-aligned starts 0, 12 "
        "(NVIDIA publishes no mixed-size placement IDs for A30-24GB)"
    )
    a100 = vgpu_host("a100mx", n=1, board="A100-80GB", vgpu_mode="mixedSize")
    held = (
        Consumer("a", "vgpu", "grid_a100d-10c", placement_gb=10),
        Consumer("b", "vgpu", "grid_a100d-10c", placement_gb=50),
    )
    _, reason = vgpu.mixed_refusal(
        vgpu.timesliced_view(replace(a100.gpus[0], consumers=held)), parse_profile_name("grid_a100d-40c")
    )
    assert reason == "GPU 0000:18:00.0 has 60 GB free but no free 40 GB range at placement IDs 0, 40"


def test_a_plan_on_a_mixed_size_board_without_placement_ids_calls_the_offset_assumed():
    host = vgpu_host("a30mx", n=1, board="A30-24GB", vgpu_mode="mixedSize")
    best = plan(Fabric((host,)), PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a30-6c")).best
    text = " ".join(best.explanation)
    assert "placement ID 0 GB" not in text
    assert "offset 0 GB, assumed: NVIDIA publishes no mixed-size placement IDs for A30-24GB" in text

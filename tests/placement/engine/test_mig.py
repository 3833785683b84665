from hypothesis import given, settings
from hypothesis import strategies as st

from gpucatalog.catalog import load_catalog
from placement.engine import mig


def _gpu(board="H100-80GB"):
    return mig.MigGpu("0000:3b:00.0", 0, load_catalog().boards[board].mig)


def _p(name, board="H100-80GB"):
    return load_catalog().boards[board].mig.by_name(name)


def test_3g_goes_to_slot_4_keeping_slot_0_for_a_4g():
    g = _gpu()
    assert mig.choose_slot(g, _p("3g.40gb")) == 4
    g = mig.place(g, "a", _p("3g.40gb"))
    assert mig.free_slots(g, _p("4g.40gb")) == (0,)
    g = mig.place(g, "b", _p("4g.40gb"))
    assert g is not None and g.compute_free == 0


def test_4g_only_at_slot_0():
    g = mig.place(_gpu(), "a", _p("1g.10gb"))
    assert g.instances[0].slot != 0  # the 1g leaves slot 0 free for a 4g
    assert mig.free_slots(g, _p("4g.40gb")) == (0,)


def test_two_3g_strand_one_compute_slice():
    g = mig.place(mig.place(_gpu(), "a", _p("3g.40gb")), "b", _p("3g.40gb"))
    assert {i.slot for i in g.instances} == {0, 4}
    assert mig.stranded(g) == (1, 0)


def test_seven_1g_leave_one_memory_slice_idle():
    g = _gpu()
    for i in range(7):
        g = mig.place(g, f"vm{i}", _p("1g.10gb"))
        assert g is not None
    assert mig.place(g, "x", _p("1g.10gb")) is None
    assert mig.stranded(g) == (0, 1)


def test_one_me_instance_per_gpu():
    g = mig.place(_gpu("A30-24GB"), "a", _p("1g.6gb+me", "A30-24GB"))
    assert mig.refusal(g, _p("2g.12gb+me", "A30-24GB"))[0] == "mig-me"
    assert mig.refusal(g, _p("2g.12gb", "A30-24GB")) is None


def test_a30_geometry():
    g = _gpu("A30-24GB")
    g = mig.place(g, "a", _p("2g.12gb", "A30-24GB"))
    g = mig.place(g, "b", _p("2g.12gb", "A30-24GB"))
    assert g.compute_free == 0 and g.memory_free == 0


NAMES = [p.name for p in load_catalog().boards["H100-80GB"].mig.profiles]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(NAMES), max_size=12))
def test_mig_packer_never_overlaps_or_exceeds(names):
    g = _gpu()
    for i, name in enumerate(names):
        after = mig.place(g, f"vm{i}", _p(name))
        if after is not None:
            g = after
    used = 0
    for inst in g.instances:
        assert inst.slot in inst.profile.placements
        assert used & inst.memory_mask == 0
        used |= inst.memory_mask
    assert used < 1 << 8
    assert g.compute_used <= 7
    assert sum(1 for i in g.instances if i.profile.media_extensions) <= 1
    for p in g.geometry.profiles:
        assert sum(1 for i in g.instances if i.profile == p) <= p.max_per_gpu
    c, m = mig.stranded(g)
    assert 0 <= c <= g.compute_free and 0 <= m <= g.memory_free


def test_a_slot_refusal_names_the_vm_holding_the_only_start_slot():
    """4g starts only at slot 0 (DOMAIN 3.5): with slots 4-7 free the reason is the VM on slot 0, not contiguity."""
    g = mig.MigGpu("0000:18:00.0", 0, load_catalog().boards["A100-80GB"].mig)
    g = g.with_instance(mig.MigInstance("a", g.geometry.by_name("3g.40gb"), 0))
    code, reason = mig.refusal(g, g.geometry.by_name("4g.40gb"))
    assert code == "mig-slot"
    assert reason == (
        "GPU 0000:18:00.0 has no free start slot for 4g.40gb: it starts only at slot 0, held by VM a's 3g.40gb "
        "(slots 0-3); memory slices 4-7 are free, but it cannot start there"
    )
    assert "contiguous" not in reason


def test_a_slot_refusal_says_not_contiguous_only_when_it_is_so():
    g = _gpu()
    g = g.with_instance(mig.MigInstance("a", _p("2g.20gb"), 4)).with_instance(mig.MigInstance("b", _p("2g.20gb"), 2))
    code, reason = mig.refusal(g, _p("3g.40gb"))
    assert code == "mig-slot"
    assert reason.endswith(
        "it starts only at slots 0 or 4, held by VM b's 2g.20gb (slots 2-3) and VM a's 2g.20gb (slots 4-5); "
        "the 4 free memory slices are not contiguous"
    )


def test_a_slot_refusal_names_a_reservation_as_one():
    g = _gpu().with_instance(mig.MigInstance("reservation:web-1", _p("4g.40gb"), 0))
    _, reason = mig.refusal(g, _p("4g.40gb")) or (None, "")
    assert "MIG maximum" in reason  # one 4g per GPU: the count rule speaks first
    g = _gpu().with_instance(mig.MigInstance("reservation:web-1", _p("1g.10gb"), 0))
    _, reason = mig.refusal(g, _p("4g.40gb"))
    assert "held by the 1g.10gb reserved for web-1 (slot 0)" in reason


def test_a_gpu_instance_no_vm_holds_is_counted_and_named():
    """Trial E #1: a GPU instance `mig -lgi` shows with no VM holding it takes its slices; refusals name it."""
    from placement.engine.model import Consumer, GpuState

    unheld = Consumer(mig.unheld_consumer_name(4), "mig", "1g.6gb+me", mig_slot=0)
    held = Consumer("rag-embed", "mig", "grid_a30-2-12c", mig_slot=2)
    gpu = GpuState("0000:41:00.0", 0, "A30-24GB", "A30", 24576, 0, "sharedDirect", "multiInstanceGpu", True, None,
                   None, consumers=(held, unheld))  # fmt: skip
    view = mig.mig_view(gpu)
    assert mig.mig_consumer_problem(gpu) is None
    assert {(i.vm, i.slot) for i in view.instances} == {("rag-embed", 2), ("GPU instance 4 (no VM)", 0)}
    code, reason = mig.refusal(view, _p("2g.12gb", "A30-24GB"))  # A30: 4 compute slices, 3 in use
    assert code == "mig-compute"
    assert reason == (
        "GPU 0000:41:00.0 has 1 free compute slice, 2g.12gb needs 2 (counting GPU instance 4 (1g.6gb+me, slot 0), "
        "which no VM holds)"
    )
    a100 = _gpu("A100-80GB").with_instance(mig.MigInstance(mig.unheld_consumer_name(7), _p("1g.10gb", "A100-80GB"), 0))
    code, reason = mig.refusal(a100, _p("4g.40gb", "A100-80GB"))
    assert code == "mig-slot" and "slot 0, held by GPU instance 7 (1g.10gb, slot 0), which no VM holds" in reason
    assert mig.choose_slot(view, _p("1g.6gb", "A30-24GB")) == 1
    code, reason = mig.refusal(view, _p("1g.6gb+me", "A30-24GB"))
    assert code == "mig-max" and "counting GPU instance 4 (1g.6gb+me, slot 0), which no VM holds" in reason
    assert mig.is_unheld(unheld.vm) and not mig.is_unheld("GPU instance 4") and not mig.is_unheld("rag-embed")


def test_one_free_compute_slice_is_singular():
    g = _gpu()
    for i in range(6):
        g = mig.place(g, f"vm{i}", _p("1g.10gb"))
    code, reason = mig.refusal(g, _p("2g.20gb"))
    assert code == "mig-compute" and "has 1 free compute slice, 2g.20gb needs 2" in reason

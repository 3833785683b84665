"""MIG slot rules shared by the engine and the inventory: which start slots are free, vSphere's choice, and a
layout for running instances whose slots were not reported."""

from gpucatalog import mig_layout
from gpucatalog.catalog import load_catalog

H100 = load_catalog().boards["H100-80GB"].mig


def _p(name):
    return H100.by_name(name)


def _layout(*placed):
    layout = mig_layout.EMPTY
    for name, slot in placed:
        assert mig_layout.fits(H100, layout, _p(name), slot), (name, slot)
        layout = mig_layout.add(layout, _p(name), slot)
    return layout


def test_a_free_slice_at_no_start_slot_lets_no_instance_start():
    layout = _layout(("3g.40gb", 0), ("2g.20gb", 4), ("1g.10gb", 6))
    assert layout[1] == 6 and bin(layout[0]).count("1") == 7  # one compute and one memory slice are free
    assert not any(mig_layout.free_slots(H100, layout, p) for p in H100.profiles)
    assert not mig_layout.can_start(H100, layout)
    assert mig_layout.can_start(H100, _layout(("3g.40gb", 0), ("2g.20gb", 4)))


def test_vsphere_choice_keeps_slot_0_for_a_4g():
    assert mig_layout.choose_slot(H100, mig_layout.EMPTY, _p("3g.40gb")) == 4
    assert mig_layout.choose_slot(H100, _layout(("7g.80gb", 0)), _p("1g.10gb")) is None


def test_arrange_takes_vsphere_slots_in_order_then_searches_for_any_layout():
    assert mig_layout.arrange(H100, mig_layout.EMPTY, [_p("3g.40gb"), _p("2g.20gb")]) == [4, 2]
    # vSphere would start two 2g.20gb where the 3g.40gb can no longer start; they run, so they sit elsewhere
    pending = [_p("2g.20gb"), _p("2g.20gb"), _p("3g.40gb")]
    layout = mig_layout.EMPTY
    for profile in pending[:2]:
        layout = mig_layout.add(layout, profile, mig_layout.choose_slot(H100, layout, profile))
    assert mig_layout.choose_slot(H100, layout, pending[2]) is None
    assert mig_layout.arrange(H100, mig_layout.EMPTY, pending) == [0, 2, 4]
    assert mig_layout.arrange(H100, mig_layout.EMPTY, [_p("4g.40gb"), _p("4g.40gb")]) is None

"""MIG-backed vGPU types with media extensions (grid_a100d-1-10cme = MIG 1g.10gb+me) and MIG consumers the engine
cannot interpret: a running one occupies its slot, a request for one plans (one +me instance per GPU, DOMAIN 3.5),
and a consumer the engine cannot read rejects only its host, with the reason (never a GPU taken as free)."""

from dataclasses import replace

import pytest

from placement.engine import synthetic as S
from placement.engine.mig import mig_consumer_problem, mig_view
from placement.engine.model import Consumer, Fabric
from placement.engine.plan import plan
from placement.engine.request import PlacementRequest
from placement.engine.vgpu import consumer_problem


def _with(host, *consumers, index=0):
    return replace(
        host, gpus=tuple(replace(g, consumers=g.consumers + consumers) if g.index == index else g for g in host.gpus)
    )


def _mig_host(name="mig", board="A100-80GB", n=1):
    return S.vgpu_host(name, n=n, mig=True, board=board)


def _plan(hosts, profile):
    return plan(Fabric(tuple(hosts)), PlacementRequest(gpus_per_vm=1, consumption="mig", profile=profile)).to_dict()


@pytest.mark.parametrize("slot", [0, None])
def test_a_running_me_instance_occupies_its_gpu(slot):
    host = _with(_mig_host(), Consumer("me", "mig", "grid_a100d-1-10cme", mig_slot=slot))
    view = mig_view(host.gpus[0])
    assert [(i.vm, i.profile.name) for i in view.instances] == [("me", "1g.10gb+me")]
    doc = _plan([host], "grid_a100d-7-80c")
    assert not doc["candidates"]
    assert "6 free compute slices, 7g.80gb needs 7" in " ".join(doc["rejected"][0]["reasons"])


def test_a_gpu_holding_an_me_instance_is_not_called_empty():
    host = _with(_mig_host(), Consumer("me", "mig", "grid_a100d-1-10cme"))
    (candidate,) = _plan([host], "grid_a100d-3-40c")["candidates"]
    text = " ".join(candidate["explanation"])
    assert "an empty GPU" not in text and "MIG 3g.40gb at slot" in text


def test_a_request_for_an_me_type_plans_and_prints_back_as_vsphere_spells_it():
    (candidate,) = _plan([_mig_host("a30", board="A30-24GB")], "grid_a30-1-6cme")["candidates"]
    assert candidate["gpus"][0]["profile"] == "grid_a30-1-6cme"
    assert "MIG 1g.6gb+me at slot" in " ".join(candidate["explanation"])


def test_a_second_me_instance_on_one_gpu_is_refused():
    host = _with(_mig_host("a30", board="A30-24GB"), Consumer("x", "mig", "grid_a30-2-12cme", mig_slot=0))
    doc = _plan([host], "grid_a30-1-6cme")
    assert not doc["candidates"]
    assert "already has a +me instance (one per GPU)" in " ".join(doc["rejected"][0]["reasons"])
    assert _plan([host], "grid_a30-1-6c")["candidates"]  # a plain 1g still fits beside it


@pytest.mark.parametrize(
    ("consumer", "fragment"),
    [
        (Consumer("bad", "mig", "grid_a100d-1-10zz"), "VM bad: MIG profile 'grid_a100d-1-10zz' cannot be read"),
        (Consumer("bad", "mig", None), "VM bad: MIG profile it names no MIG profile"),
        (Consumer("bad", "mig", "grid_a100d-20c"), "grid_a100d-20c is a time-sliced type, not MIG-backed"),
        (
            Consumer("bad", "mig", "grid_a100-1-5c"),
            "grid_a100-1-5c is MIG 1g.5gb, which this GPU's MIG geometry does not have",
        ),
        (Consumer("bad", "mig", "grid_a100d-4-40c", mig_slot=4), "reported at slot 4, where it cannot start (slots 0)"),
    ],
)
def test_an_uninterpretable_mig_consumer_rejects_only_its_host_with_the_reason(consumer, fragment):
    bad = _with(_mig_host("bad-host"), consumer)
    problem = consumer_problem(bad.gpus[0])
    assert problem is not None and fragment in problem and problem.startswith("GPU 0000:18:00.0: ")
    doc = _plan([bad, _mig_host("good-host")], "grid_a100d-1-10c")
    assert [c["host"] for c in doc["candidates"]] == ["good-host"]
    (rejected,) = doc["rejected"]
    assert rejected["host"] == "bad-host" and fragment in " ".join(rejected["reasons"])


def test_overlapping_reported_instances_name_both_vms():
    gpu = _with(
        _mig_host(),
        Consumer("a", "mig", "grid_a100d-3-40c", mig_slot=0),
        Consumer("b", "mig", "grid_a100d-2-20c", mig_slot=2),
    ).gpus[0]
    assert mig_consumer_problem(gpu) == (
        "VM b: its 2g.20gb is reported at slot 2, overlapping VM a's 3g.40gb (slots 0-3)"
    )


def test_an_instance_with_no_slot_left_is_a_problem_not_dropped():
    gpu = _with(
        _mig_host(),
        Consumer("a", "mig", "grid_a100d-4-40c"),
        Consumer("b", "mig", "grid_a100d-4-40c"),
    ).gpus[0]
    assert mig_consumer_problem(gpu) == "VM b: its 4g.40gb fits in no free start slot beside VM a's 4g.40gb (slots 0-3)"


def test_a_mig_consumer_on_a_board_without_mig_geometry_is_a_problem():
    host = _with(S.vgpu_host("l40s", n=1, board="L40S-48GB"), Consumer("m", "mig", "grid_a100d-1-10c"))
    assert "no MIG geometry in the catalog" in (consumer_problem(host.gpus[0]) or "")


def test_readable_mig_consumers_are_no_problem():
    gpu = _with(
        _mig_host(),
        Consumer("a", "mig", "grid_a100d-3-40c", mig_slot=4),
        Consumer("b", "mig", "grid_a100d-1-10cme"),
        Consumer("c", "mig", "2g.20gb"),
    ).gpus[0]
    assert consumer_problem(gpu) is None
    assert sorted(i.profile.name for i in mig_view(gpu).instances) == ["1g.10gb+me", "2g.20gb", "3g.40gb"]


def test_instances_the_name_order_guess_cannot_lay_out_get_a_layout_that_holds_them_all():
    # In VM-name order the two 2g.20gb take slots 4 and 2 (each keeps the most room), leaving no 3g slot; the running
    # GPU holds all three (3g at 4, 2g at 0 and 2), so no VM may be dropped and the host is readable.
    gpu = _with(
        _mig_host(),
        Consumer("a", "mig", "grid_a100d-2-20c"),
        Consumer("b", "mig", "grid_a100d-2-20c"),
        Consumer("c", "mig", "grid_a100d-3-40c"),
    ).gpus[0]
    assert consumer_problem(gpu) is None
    assert sorted((i.profile.name, i.slot) for i in mig_view(gpu).instances) == [
        ("2g.20gb", 0),
        ("2g.20gb", 2),
        ("3g.40gb", 4),
    ]


def test_instances_that_no_layout_holds_are_a_problem():
    gpu = _with(
        _mig_host(),
        Consumer("a", "mig", "grid_a100d-3-40c"),
        Consumer("b", "mig", "grid_a100d-1-10cme"),
        Consumer("c", "mig", "3g.40gb"),
    ).gpus[0]
    assert "VM c: its 3g.40gb fits in no free start slot beside" in (consumer_problem(gpu) or "")


def test_an_h100_me_consumer_keeps_its_slice():
    gpu = _with(_mig_host("h100", board="H100-80GB"), Consumer("v", "mig", "nvidia_h100xm-1-10cme", mig_slot=6)).gpus[0]
    assert consumer_problem(gpu) is None
    (instance,) = mig_view(gpu).instances
    assert (instance.profile.name, instance.slot) == ("1g.10gb+me", 6)


def test_a_mig_consumer_on_a_gpu_not_in_mig_mode_rejects_its_host_instead_of_an_empty_gpu():
    """Trial G #2: a 3g.40gb VM on a same-size A100 was skipped by both views, so the GPU was planned as empty for
    an 80C beside 40 GB in use."""
    odd = _with(S.vgpu_host("odd", n=1, board="A100-80GB"), Consumer("m", "mig", "grid_a100d-3-40c"))
    problem = consumer_problem(odd.gpus[0]) or ""
    assert "VM m runs the MIG-backed vGPU grid_a100d-3-40c, but the GPU is not in MIG mode" in problem
    ok = S.vgpu_host("ok", n=1, board="A100-80GB")
    doc = plan(Fabric((odd, ok)), PlacementRequest(gpus_per_vm=1, consumption="vgpu", profile="grid_a100d-80c"))
    assert [c.host for c in doc.candidates] == ["ok"]
    assert "not in MIG mode" in " ".join(doc.rejected[0].reasons)


def test_a_time_sliced_consumer_on_a_mig_gpu_is_a_problem():
    gpu = _with(_mig_host(), Consumer("t", "vgpu", "grid_a100d-20c")).gpus[0]
    assert "VM t runs the time-sliced vGPU grid_a100d-20c, but the GPU is in MIG mode" in (consumer_problem(gpu) or "")

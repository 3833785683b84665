"""`topology import-vgpu` checks every offset against vCenter and the catalog before storing anything, numbers
GPUs as ESXi's nvidia-smi does (passthrough GPUs are not counted), warns about GPU instances no VM holds and
lists the offsets it keeps from an earlier import."""

import copy
import json
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from inventory.models import GpuConsumer, Host
from inventory.offsets import OffsetImportError, import_vgpu_offsets
from inventory.services import import_inventory
from inventory.topology.vgpu_smi import vgpu_type_suffix

pytestmark = pytest.mark.django_db
LABS = Path(__file__).resolve().parents[2] / "tools" / "vcsim" / "labs"
MIX = "esx-mx-01.lab.local"
MIG40 = "esx-mig40-01.lab.local"
A30 = "esx-a30-01.lab.local"


def lab() -> dict:
    """The demo lab plus a mixed-size A100 80GB host (mx-a 40C, mx-b 20C on GPU 41; mx-c 8C on GPU c1) and an
    A100 40GB host whose first GPU is in passthrough and whose second is in MIG mode (mg-4g, mg-2g, mg-1g)."""
    doc = json.loads((LABS / "demo.json").read_text())
    a100 = next(h for h in doc["hosts"] if h["name"].startswith("esx-a100"))
    a30 = next(h for h in doc["hosts"] if h["name"] == A30)

    def vm(name: str, host: str) -> None:
        doc["vms"].append({"name": name, "host": host, "power_state": "poweredOn", "cpus": 8, "memory_mb": 65536,
                           "memory_reservation_mb": 65536})  # fmt: skip

    mx = copy.deepcopy(a100)
    mx["name"] = MIX
    for g in mx["gpus"]:
        g["vgpu_mode"], g["consumers"] = "mixedSize", []
    mx["gpus"][0]["consumers"] = [
        {"vm": "mx-a", "kind": "vgpu", "profile": "grid_a100d-40c"},
        {"vm": "mx-b", "kind": "vgpu", "profile": "grid_a100d-20c"},
    ]
    mx["gpus"][1]["consumers"] = [{"vm": "mx-c", "kind": "vgpu", "profile": "grid_a100d-8c"}]
    mig = copy.deepcopy(a30)
    mig["name"] = MIG40
    for g in mig["gpus"]:
        g.update(device_id="0x20f1", model="NVIDIA A100 PCIe 40GB", memory_mb=40960, consumers=[],
                 profiles=["grid_a100-1-5c", "grid_a100-2-10c", "grid_a100-3-20c", "grid_a100-4-20c"])  # fmt: skip
    mig["gpus"][0].update(graphics_type="direct", vgpu_mode=None, mig_enabled=False, profiles=[])
    mig["gpus"][1]["consumers"] = [
        {"vm": "mg-4g", "kind": "mig", "profile": "grid_a100-4-20c"},
        {"vm": "mg-2g", "kind": "mig", "profile": "grid_a100-2-10c"},
        {"vm": "mg-1g", "kind": "mig", "profile": "grid_a100-1-5c"},
    ]
    doc["hosts"] += [mx, mig]
    for name in ("mx-a", "mx-b", "mx-c"):
        vm(name, MIX)
    for name in ("mg-4g", "mg-2g", "mg-1g"):
        vm(name, MIG40)
    return doc


@pytest.fixture
def hosts():
    import_inventory(document=lab(), vcenter_name="lab")


def vgpu_q(*blocks: tuple) -> str:
    """`nvidia-smi vgpu -q` in the driver's layout: (gpu bus id, vm, vGPU Name, gpu instance id, placement id)."""
    out, by_gpu = [], {}
    for gpu, *rest in blocks:
        by_gpu.setdefault(gpu, []).append(rest)
    for gpu, vms in by_gpu.items():
        out += [f"GPU {gpu}", f"    Active vGPUs                          : {len(vms)}"]
        for n, (vm, name, gi, placement) in enumerate(vms):
            out += [
                f"    vGPU ID                               : {3251634000 + n}",
                f"        VM Name                           : {vm}",
                f"        vGPU Name                         : {name}",
                f"        GPU Instance ID                   : {gi}",
                f"        Placement ID                      : {placement}",
            ]
    return "\n".join(out) + "\n"


def lgi(*rows: tuple[int, str, int, int, int, int]) -> str:
    """`nvidia-smi mig -lgi`: (gpu, profile, profile id, instance id, start, size) per instance."""
    out = ["+---------------------------------------------------------+",
           "| GPU instances:                                          |",
           "| GPU   Name               Profile  Instance   Placement  |",
           "|                            ID       ID       Start:Size |",
           "|=========================================================|"]  # fmt: skip
    for gpu, profile, pid, gi, start, size in rows:
        out.append(f"|   {gpu}  MIG {profile:<16} {pid:>3}  {gi:>8}          {start}:{size}     |")
        out.append("+---------------------------------------------------------+")
    return "\n".join(out) + "\n"


GOOD_MX = vgpu_q(
    ("00000000:41:00.0", "mx-a", "GRID A100D-40C", "N/A", "40"),
    ("00000000:41:00.0", "mx-b", "GRID A100D-20C", "N/A", "0"),
    ("00000000:C1:00.0", "mx-c", "GRID A100D-8C", "N/A", "32"),
)
# The real A100 40GB capture (samples/smi/mig-lgi-a100-40gb-ssup2.txt): 1g.5gb 6:1, 2g.10gb 4:2, 4g.20gb 0:4.
SSUP2 = lgi((0, "1g.5gb", 19, 9, 6, 1), (0, "2g.10gb", 14, 3, 4, 2), (0, "4g.20gb", 5, 2, 0, 4))


def mig_q(*vms: tuple[str, str, int]) -> str:
    return vgpu_q(*(("00000000:C1:00.0", vm, name, str(gi), "N/A") for vm, name, gi in vms))


GOOD_MIG = mig_q(("mg-4g", "GRID A100-4-20C", 2), ("mg-2g", "GRID A100-2-10C", 3), ("mg-1g", "GRID A100-1-5C", 9))


def offsets(host: str) -> dict[str, tuple]:
    return {
        c.vm.name: (c.placement_gb, c.mig_slot)
        for c in GpuConsumer.objects.filter(gpu__host__name=host).select_related("vm")
    }


def run(host: str, text: str, mig: str | None = None):
    return import_vgpu_offsets(host=Host.objects.get(name=host), vgpu_text=text, mig_text=mig)


def test_a_valid_mixed_size_capture_is_stored(hosts):
    result = run(MIX, GOOD_MX)
    assert (result.updated, result.warnings, result.kept) == (3, [], [])
    assert offsets(MIX) == {"mx-a": (40, None), "mx-b": (0, None), "mx-c": (32, None)}


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        # a 20 GB vGPU on an A100 80GB in mixed-size mode starts only at 0, 20, 40 or 60 (catalog)
        (
            (("00000000:41:00.0", "mx-b", "GRID A100D-20C", "N/A", "12"),),
            r"line 3: mx-b \(grid_a100d-20c, 20 GB\) on GPU 0 \(0000:41:00.0, A100-80GB\) is at placement ID 12, "
            r"but in mixed-size mode a 20 GB vGPU starts only at placement IDs 0, 20, 40, 60 of its GPU model",
        ),
        # 20C at 40 overlaps the 40C at 40
        (
            (
                ("00000000:41:00.0", "mx-a", "GRID A100D-40C", "N/A", "40"),
                ("00000000:41:00.0", "mx-b", "GRID A100D-20C", "N/A", "40"),
            ),
            r"line 8: mx-b on GPU .*0000:41:00.0.* would take 40-60 GB from placement ID 40, overlapping mx-a at "
            r"placement ID 40 \(line 3\), 40-80 GB: two vGPUs never share framebuffer",
        ),
        # the driver's vGPU Name is another type than the VM's profile in vCenter
        (
            (("00000000:41:00.0", "mx-b", "GRID A100D-8C", "N/A", "0"),),
            r"line 3: vgpu -q shows mx-b on GPU 0000:41:00.0 as GRID A100D-8C, but vCenter reports its profile as "
            r"grid_a100d-20c",
        ),
        # a MIG-backed vGPU in the capture for a VM vCenter reports as time-sliced
        ((("00000000:41:00.0", "mx-b", "GRID A100D-20C", "4", "N/A"),), "add the output of `nvidia-smi mig -lgi`"),
        (
            (
                ("00000000:41:00.0", "mx-a", "GRID A100D-40C", "N/A", "40"),
                ("00000000:41:00.0", "mx-a", "GRID A100D-40C", "N/A", "0"),
            ),
            r"line 8: vgpu -q lists mx-a on GPU 0000:41:00.0 twice \(first at line 3\)",
        ),
    ],
    ids=["not-a-placement-id", "overlap", "vgpu-name", "time-sliced-vm-on-a-gpu-instance", "listed-twice"],
)
def test_impossible_time_sliced_offsets_are_refused_and_nothing_is_stored(hosts, blocks, message):
    ok = ("00000000:C1:00.0", "mx-c", "GRID A100D-8C", "N/A", "32")  # a valid line first: still not stored
    with pytest.raises(OffsetImportError, match=message) as info:
        run(MIX, vgpu_q(*blocks, ok))
    assert info.value.field in ("vgpu", "mig")
    assert offsets(MIX) == {"mx-a": (None, None), "mx-b": (None, None), "mx-c": (None, None)}


def test_same_size_offsets_must_fit_the_framebuffer(hosts):
    with pytest.raises(OffsetImportError, match=r"chat-a .* at placement ID 75 would end at 85 GB, past the GPU's 80"):
        run("esx-a100-01.lab.local", vgpu_q(("00000000:41:00.0", "chat-a", "GRID A100D-10C", "N/A", "75")))


def test_mig_numbering_skips_the_passthrough_gpu(hosts):
    """GPU 0 in `mig -lgi` is the host's first GPU the NVIDIA driver claims: 0000:c1:00.0, after a passthrough
    GPU at 0000:41:00.0 (trial C's capture was refused before)."""
    result = run(MIG40, GOOD_MIG, SSUP2)
    assert (result.updated, result.unheld, result.warnings) == (3, [], [])
    assert offsets(MIG40) == {"mg-4g": (None, 0), "mg-2g": (None, 4), "mg-1g": (None, 6)}


def test_a_gpu_number_the_driver_does_not_have_is_refused(hosts):
    with pytest.raises(OffsetImportError, match=r"line 6: mig -lgi shows MIG 1g.5gb \(GPU instance 7\) on GPU 1, "
                       r"but the NVIDIA driver on esx-mig40-01.lab.local numbers only these GPUs \(0: 0000:c1:00.0; "
                       r"GPUs in passthrough are not counted\)") as info:  # fmt: skip
        run(MIG40, GOOD_MIG, lgi((1, "1g.5gb", 19, 7, 0, 1), *[(0, *r) for r in [("1g.5gb", 19, 9, 6, 1),
            ("2g.10gb", 14, 3, 4, 2), ("4g.20gb", 5, 2, 0, 4)]]))  # fmt: skip
    assert info.value.field == "mig"
    assert offsets(MIG40) == {"mg-4g": (None, None), "mg-2g": (None, None), "mg-1g": (None, None)}


@pytest.mark.parametrize(
    ("vgpu", "mig", "message"),
    [
        # trial C's migbad1: instance ids swapped, so mg-4g (a 4g.20gb in vCenter) lands on the 2g.10gb
        (
            mig_q(("mg-4g", "GRID A100-4-20C", 3), ("mg-2g", "GRID A100-2-10C", 2)),
            SSUP2,
            r"line 8: GPU instance 3 on GPU 0 \(0000:c1:00.0, A100-40GB\), which mg-4g uses \(line 3 of vgpu -q\), "
            r"is a MIG 2g.10gb, but vCenter reports mg-4g's profile as grid_a100-4-20c \(MIG 4g.20gb\)",
        ),
        # trial C's lgibad2: a 2g.10gb at slot 3, not a 2g start and over the 4g at 0:4
        (
            GOOD_MIG,
            lgi((0, "1g.5gb", 19, 9, 6, 1), (0, "2g.10gb", 14, 3, 3, 2), (0, "4g.20gb", 5, 2, 0, 4)),
            r"line 8: MIG 2g.10gb \(GPU instance 3, held by mg-2g\) on GPU 0 \(0000:c1:00.0, A100-40GB\) starts "
            r"at memory slice 3, but a 2g.10gb can only start at slice 0, 2, 4",
        ),
        (
            GOOD_MIG,
            lgi(
                (0, "1g.5gb", 19, 9, 6, 1),
                (0, "2g.10gb", 14, 3, 4, 2),
                (0, "4g.20gb", 5, 2, 0, 4),
                (0, "1g.5gb", 19, 10, 3, 1),
            ),
            r"line 12: MIG 1g.5gb \(GPU instance 10\) on GPU .* at memory slices 3-3 overlaps GPU instance 2 at slices "
            r"0-3 \(line 10\): GPU instances never share memory slices",
        ),
        (
            GOOD_MIG,
            lgi((0, "1g.5gb", 19, 9, 6, 2), (0, "2g.10gb", 14, 3, 4, 2), (0, "4g.20gb", 5, 2, 0, 4)),
            r"line 6: MIG 1g.5gb \(GPU instance 9, held by mg-1g\) .* spans 2 memory slices; a 1g.5gb spans 1",
        ),
        (
            GOOD_MIG,
            lgi(
                (0, "1g.5gb", 19, 9, 6, 1),
                (0, "2g.10gb", 14, 3, 4, 2),
                (0, "4g.20gb", 5, 2, 0, 4),
                (0, "1g.6gb", 14, 4, 5, 1),
            ),
            r"line 12: GPU 0 \(0000:c1:00.0, A100-40GB\) has no MIG profile 1g.6gb",
        ),
        (
            mig_q(("mg-4g", "GRID A100-4-20C", 2)),
            lgi((0, "4g.20gb", 5, 2, 0, 4), (0, "1g.5gb+me", 20, 11, 4, 1), (0, "1g.5gb+me", 20, 12, 5, 1)),
            r"line 10: MIG 1g.5gb\+me \(GPU instance 12\) and GPU instance 11 \(line 8\) .* both have media "
            r"extensions \(\+me\); a GPU has only one",
        ),
        # a MIG VM shown as time-sliced
        (
            vgpu_q(("00000000:C1:00.0", "mg-1g", "GRID A100-1-5C", "N/A", "0")),
            None,
            r"line 3: vgpu -q shows mg-1g on GPU 0000:c1:00.0 as a time-sliced vGPU \(no GPU instance\), but vCenter "
            r"reports it as MIG-backed vGPU \(grid_a100-1-5c\)",
        ),
    ],
    ids=[
        "profile-mismatch",
        "invalid-start",
        "overlap",
        "wrong-size",
        "not-a-profile-of-the-model",
        "two-media",
        "mig-vm-as-time-sliced",
    ],
)
def test_impossible_mig_slots_are_refused_and_nothing_is_stored(hosts, vgpu, mig, message):
    with pytest.raises(OffsetImportError, match=message):
        run(MIG40, vgpu, mig)
    assert offsets(MIG40) == {"mg-4g": (None, None), "mg-2g": (None, None), "mg-1g": (None, None)}


def test_the_a30_capture_of_trial_c_is_refused(hosts):
    """rag-embed is a grid_a30-2-12c (2g.12gb); the real lgi has only 1g.6gb instances, GI 4 at slice 1."""
    a30 = lgi(*((0, "1g.6gb", 14, gi, gi - 3, 1) for gi in (3, 4, 5, 6)))
    with pytest.raises(OffsetImportError, match=r"GPU instance 4 .* is a MIG 1g.6gb, but vCenter reports rag-embed's "
                       r"profile as grid_a30-2-12c \(MIG 2g.12gb\)"):  # fmt: skip
        run(A30, vgpu_q(("00000000:41:00.0", "rag-embed", "GRID A30-2-12C", "4", "N/A")), a30)
    assert offsets(A30) == {"rag-embed": (None, None)}


def test_a_gpu_in_time_sliced_mode_has_no_gpu_instances(hosts):
    with pytest.raises(
        OffsetImportError,
        match=r"mig -lgi shows MIG 3g.40gb \(GPU instance 2\) on GPU 1 "
        r"\(0000:c1:00.0, A100-80GB\), but vCenter reports that GPU in same size time-sliced mode",
    ):
        run("esx-a100-01.lab.local", vgpu_q(("00000000:41:00.0", "chat-a", "GRID A100D-10C", "N/A", "0")),
            lgi((1, "3g.40gb", 9, 2, 4, 4)))  # fmt: skip


def test_instances_no_vm_holds_are_listed(hosts, tmp_path, capsys):
    """The 1g.5gb at slice 6 is in the capture but no VM holds it: the planner would place a new instance there."""
    vgpu, mig = tmp_path / "vgpu.txt", tmp_path / "lgi.txt"
    vgpu.write_text(mig_q(("mg-4g", "GRID A100-4-20C", 2), ("mg-2g", "GRID A100-2-10C", 3)))
    mig.write_text(SSUP2)
    call_command("topology", "import-vgpu", str(vgpu), "--mig-lgi", str(mig), "--host", MIG40)
    out = capsys.readouterr().out
    assert "2 vGPU offsets stored" in out
    assert (
        f"warning: {mig}: line 6: GPU 0 (0000:c1:00.0, A100-40GB): GPU instance 9, MIG 1g.5gb at memory slices "
        "6-6, is held by no VM vCenter reports; the planner counts these slices as used until the host reboots or "
        "the next import with `nvidia-smi mig -lgi`" in out
    )
    assert "instance 3," not in out and "instance 2," not in out


def test_offsets_kept_from_an_earlier_import_are_listed(hosts, tmp_path, capsys):
    """Trial C's bad6: mx-c shows as mx-zz in the new capture, so mx-c's offset from the first import stays."""
    run(MIX, GOOD_MX)
    capture = tmp_path / "vgpu.txt"
    capture.write_text(GOOD_MX.replace("mx-c", "mx-zz"))
    call_command("topology", "import-vgpu", str(capture), "--host", MIX)
    out = capsys.readouterr().out
    assert "0 vGPU offsets stored, 2 unchanged" in out
    assert (
        "warning: kept from an earlier import (the planner still uses them): mx-c on 0000:c1:00.0: placement ID "
        "32 GB (imported 20" in out
    )
    assert re.search(r"placement ID 32 GB \(imported \d{4}-\d\d-\d\d \d\d:\d\d UTC; not in this capture\)", out)
    assert offsets(MIX)["mx-c"] == (32, None)


def test_a_kept_offset_the_new_capture_overlaps_is_refused(hosts, tmp_path):
    """mx-a keeps placement ID 40 from the first import; the new capture does not show it and puts mx-b there."""
    run(MIX, GOOD_MX)
    capture = tmp_path / "vgpu.txt"
    capture.write_text(vgpu_q(("00000000:41:00.0", "mx-b", "GRID A100D-20C", "N/A", "40")))
    with pytest.raises(
        CommandError,
        match=rf"{capture}: line 3: mx-b on GPU .* takes placement ID 40, overlapping "
        r"mx-a \(grid_a100d-40c\), which keeps placement ID 40 \(40-79 GB\) from an earlier import",
    ):
        call_command("topology", "import-vgpu", str(capture), "--host", MIX)
    assert offsets(MIX)["mx-b"] == (0, None)


def test_a_kept_mig_slot_the_new_capture_overlaps_is_refused(hosts):
    """mg-4g keeps slot 0 (slices 0-3) from the first import; the new capture puts mg-2g's instance at 0:2."""
    run(MIG40, GOOD_MIG, SSUP2)
    with pytest.raises(OffsetImportError, match=r"line 6: mg-2g on GPU 0 \(0000:c1:00.0, A100-40GB\) takes GPU "
                       r"instance 3 at slices 0-1, overlapping mg-4g \(grid_a100-4-20c\), which keeps MIG slot 0 "
                       r"\(0-3 memory slices\) from an earlier import") as info:  # fmt: skip
        run(MIG40, mig_q(("mg-2g", "GRID A100-2-10C", 3)), lgi((0, "2g.10gb", 14, 3, 0, 2)))
    assert info.value.field == "mig"
    assert offsets(MIG40) == {"mg-4g": (None, 0), "mg-2g": (None, 4), "mg-1g": (None, 6)}


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("GRID A100D-20C", "a100d-20c"), ("NVIDIA H100XM-1-10C", "h100xm-1-10c"),
     ("NVIDIA RTX Pro 6000 Blackwell DC-3Q", "dc-3q"), ("GRID A100-1-5CME", "a100-1-5cme"), ("N/A", None), ("", None)],
)  # fmt: skip
def test_vgpu_type_suffix(name, suffix):
    assert vgpu_type_suffix(name) == suffix


def test_a_kept_offset_of_a_vm_shown_without_a_placement_id_says_so(hosts, tmp_path, capsys):
    """Trial E #7: the capture shows mx-c but without a placement ID; the kept offset must not claim the
    capture does not show it."""
    run(MIX, GOOD_MX)
    capture = tmp_path / "vgpu.txt"
    capture.write_text(GOOD_MX.replace("        Placement ID                      : 32\n", ""))
    call_command("topology", "import-vgpu", str(capture), "--host", MIX)
    out = capsys.readouterr().out
    assert re.search(r"warning: line \d+: mx-c shows no placement ID \(older driver\); skipped", out)
    assert re.search(r"mx-c on 0000:c1:00.0: placement ID 32 GB \(imported [^;]*; this capture shows it without a "
                     r"placement ID\)", out)  # fmt: skip
    assert "not in this capture" not in out


def test_a_mig_vm_without_mig_lgi_names_the_option_not_none(hosts, tmp_path):
    """Trial E #7: the error read 'None: ... add `nvidia-smi mig -lgi`' (the label of the file not given)."""
    capture = tmp_path / "vgpu.txt"
    capture.write_text(GOOD_MIG)
    with pytest.raises(CommandError) as info:
        call_command("topology", "import-vgpu", str(capture), "--host", MIG40)
    message = str(info.value)
    assert message.startswith(f"{capture}: line 3: mg-4g runs on MIG GPU instance 2 of GPU 0000:c1:00.0: add the "
                              "output of `nvidia-smi mig -lgi`")  # fmt: skip
    assert message.endswith("with --mig-lgi FILE; nothing was stored") and "None" not in message


def test_a_same_size_placement_id_off_the_size_grid_is_warned_about(hosts):
    """Trial E #11: chat-a (10C) at placement ID 35 on a same-size GPU was stored without a word."""
    result = run("esx-a100-01.lab.local", vgpu_q(("00000000:41:00.0", "chat-a", "GRID A100D-10C", "N/A", "35")))
    assert result.warnings == [
        "line 3: chat-a (grid_a100d-10c, 10 GB) on GPU 0 (0000:41:00.0, A100-80GB) is at placement ID 35, which is "
        "not a multiple of its 10 GB size: in same-size mode a 10 GB vGPU is expected at 0, 10, 20 ...; check that "
        "the capture is from this host (the planner does not use placement IDs in same-size mode)"
    ]
    assert (
        run("esx-a100-01.lab.local", vgpu_q(("00000000:41:00.0", "chat-a", "GRID A100D-10C", "N/A", "30"))).warnings
        == []
    )

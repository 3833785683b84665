"""Exact vGPU offsets: import placement IDs and MIG slots onto consumers; nothing stored on bad input; kept
across syncs."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from inventory.models import GpuConsumer, Host
from inventory.offsets import OffsetImportError, import_vgpu_offsets
from inventory.services import import_inventory

pytestmark = pytest.mark.django_db
LABS = Path(__file__).resolve().parents[2] / "tools" / "vcsim" / "labs"


def vgpu_q(*blocks: tuple[str, str, str, str]) -> str:
    """`nvidia-smi vgpu -q` text in the driver's layout: (gpu bus id, vm, gpu instance id, placement id)."""
    out, by_gpu = [], {}
    for gpu, vm, gi, placement in blocks:
        by_gpu.setdefault(gpu, []).append((vm, gi, placement))
    for gpu, vms in by_gpu.items():
        out.append(f"GPU {gpu}")
        out.append(f"    Active vGPUs                          : {len(vms)}")
        for n, (vm, gi, placement) in enumerate(vms):
            out += [
                f"    vGPU ID                               : {3251634000 + n}",
                f"        VM Name                           : {vm}",
                f"        GPU Instance ID                   : {gi}",
                f"        Placement ID                      : {placement}",
                "        FB Memory Usage",
                "            Total                         : 10240 MiB",
            ]
    return "\n".join(out) + "\n"


LGI = """+---------------------------------------------------------+
| GPU instances:                                          |
| GPU   Name               Profile  Instance   Placement  |
|                            ID       ID       Start:Size |
|=========================================================|
|   0  MIG 3g.40gb            9        2          4:4     |
+---------------------------------------------------------+
|   0  MIG 4g.40gb            5        1          0:4     |
+---------------------------------------------------------+
|   1  MIG 1g.10gb           19        9          6:1     |
+---------------------------------------------------------+
"""


def load(lab: str) -> None:
    import_inventory(document=json.loads((LABS / lab).read_text()), vcenter_name="lab")


def offsets(host: str) -> dict[str, tuple]:
    return {
        c.vm.name: (c.placement_gb, c.mig_slot)
        for c in GpuConsumer.objects.filter(gpu__host__name=host).select_related("vm")
    }


def test_time_sliced_placement_ids_are_stored_and_survive_a_resync():
    load("demo.json")
    host = Host.objects.get(name="esx-a100-01.lab.local")
    text = vgpu_q(("00000000:41:00.0", "chat-a", "N/A", "0"), ("00000000:C1:00.0", "chat-b", "N/A", "40"))
    result = import_vgpu_offsets(host=host, vgpu_text=text)
    assert (result.updated, result.unchanged, result.warnings) == (2, 0, [])
    assert offsets(host.name) == {"chat-a": (0, None), "chat-b": (40, None)}
    load("demo.json")  # a re-sync with no change keeps them
    assert offsets(host.name) == {"chat-a": (0, None), "chat-b": (40, None)}
    assert import_vgpu_offsets(host=host, vgpu_text=text).unchanged == 2


def test_mig_slots_come_from_the_gpu_instance_placement():
    load("edge.json")
    host = Host.objects.get(name="esx-hgx-mig-01.lab.local")
    text = vgpu_q(
        ("00000000:18:00.0", "mig-a", "2", "N/A"),
        ("00000000:18:00.0", "mig-b", "1", "N/A"),
        ("00000000:1A:00.0", "mig-c", "9", "N/A"),
    )
    import_vgpu_offsets(host=host, vgpu_text=text, mig_text=LGI)
    assert offsets(host.name) == {"mig-a": (None, 4), "mig-b": (None, 0), "mig-c": (None, 6)}


@pytest.mark.parametrize(
    ("text", "mig", "field", "message"),
    [
        ("not nvidia-smi\n", None, "vgpu", "line 1"),
        (vgpu_q(("00000000:77:00.0", "chat-a", "N/A", "0")), None, "vgpu", "0000:77:00.0 is not a GPU"),
        (vgpu_q(("00000000:41:00.0", "nobody", "N/A", "0")), None, "vgpu", "no vGPU in the capture matches"),
        (vgpu_q(("00000000:41:00.0", "chat-a", "3", "N/A")), None, "mig", "add the output of `nvidia-smi mig -lgi`"),
        (vgpu_q(("00000000:41:00.0", "chat-a", "7", "N/A")), LGI, "mig", "has no GPU instance 7"),
        (vgpu_q(("00000000:41:00.0", "chat-a", "N/A", "0")), "| broken |\n", "mig", "line 1"),
        # the lgi file given holds no instance: the error is about that file, not a line of vgpu -q read as its own
        (
            vgpu_q(("00000000:41:00.0", "chat-a", "3", "N/A")),
            LGI.split("|   0")[0],
            "mig",
            r"^mig: lists no GPU instance, but chat-a runs on MIG GPU instance 3 .*\(line 3 of vgpu -q\)",
        ),
    ],
)
def test_bad_or_mismatched_captures_store_nothing(text, mig, field, message):
    load("demo.json")
    host = Host.objects.get(name="esx-a100-01.lab.local")
    good = vgpu_q(("00000000:C1:00.0", "chat-b", "N/A", "40"), ("00000000:41:00.0", "chat-a", "N/A", "0"))
    with pytest.raises(OffsetImportError, match=message) as info:
        import_vgpu_offsets(host=host, vgpu_text=good + text if field == "mig" and mig is None else text,
                            mig_text=mig)  # fmt: skip
    assert info.value.field == field
    assert offsets(host.name) == {"chat-a": (None, None), "chat-b": (None, None)}


def test_command_imports_and_names_the_file_on_error(tmp_path, capsys):
    load("demo.json")
    capture = tmp_path / "vgpu.txt"
    capture.write_text(vgpu_q(("00000000:41:00.0", "chat-a", "N/A", "0"), ("00000000:41:00.0", "ghost", "N/A", "10")))
    call_command("topology", "import-vgpu", str(capture), "--host", "esx-a100-01.lab.local")
    out = capsys.readouterr().out
    assert "1 vGPU offset stored" in out and "chat-a on 0000:41:00.0: placement ID 0 GB" in out
    assert "no VM 'ghost'" in out
    capture.write_text("GPU 00000000:41:00.0\n    vGPU ID : 1\n        VM Name : chat-a\n        Placement ID : x\n")
    with pytest.raises(CommandError, match=rf"{capture}: line 4: Placement ID must be .*nothing was stored"):
        call_command("topology", "import-vgpu", str(capture), "--host", "esx-a100-01.lab.local")


def demo_with(boot: dict[str, str] | None = None, profile: dict[str, str] | None = None) -> dict:
    doc = json.loads((LABS / "demo.json").read_text())
    for vm in doc["vms"]:
        if boot and vm["name"] in boot:
            vm["boot_time"] = boot[vm["name"]]
    for host in doc["hosts"]:
        for gpu in host["gpus"]:
            for c in gpu.get("consumers", ()):
                if profile and c["vm"] in profile:
                    c["profile"] = profile[c["vm"]]
    return doc


def sync(doc: dict) -> dict:
    return import_inventory(document=doc, vcenter_name="lab")[1]


CHAT = (("00000000:41:00.0", "chat-a", "N/A", "0"), ("00000000:C1:00.0", "chat-b", "N/A", "40"))
BOOT = {"chat-a": "2026-11-30T08:00:00+00:00", "chat-b": "2026-11-30T09:00:00+00:00"}


def test_offsets_hold_for_one_boot_of_the_vm():
    """vSphere picks a vGPU's placement when the VM powers on: a sync that sees another boot time (a power cycle
    between two syncs) clears the imported offset, so plans say it is inferred again; the same boot keeps it."""
    sync(demo_with(BOOT))
    host = Host.objects.get(name="esx-a100-01.lab.local")
    import_vgpu_offsets(host=host, vgpu_text=vgpu_q(*CHAT))
    stored = GpuConsumer.objects.select_related("vm").get(vm__name="chat-a")
    assert stored.offsets_imported_at is not None
    assert stored.offsets_boot_time.isoformat() == BOOT["chat-a"]
    assert sync(demo_with(BOOT)).get("consumer_offsets_cleared", 0) == 0
    assert offsets(host.name) == {"chat-a": (0, None), "chat-b": (40, None)}
    counts = sync(demo_with(BOOT | {"chat-b": "2026-11-30T10:30:00+00:00"}))
    assert counts["consumer_offsets_cleared"] == 1
    assert offsets(host.name) == {"chat-a": (0, None), "chat-b": (None, None)}
    cleared = GpuConsumer.objects.get(vm__name="chat-b")
    assert (cleared.offsets_imported_at, cleared.offsets_boot_time) == (None, None)


def test_a_new_profile_clears_the_offset_and_legacy_offsets_survive_a_boot_time():
    sync(demo_with(BOOT))
    host = Host.objects.get(name="esx-a100-01.lab.local")
    import_vgpu_offsets(host=host, vgpu_text=vgpu_q(*CHAT))
    # an offset imported by an earlier version (no import time recorded) cannot be tied to a boot: it stays
    GpuConsumer.objects.filter(vm__name="chat-b").update(offsets_imported_at=None, offsets_boot_time=None)
    sync(demo_with(BOOT | {"chat-b": "2026-11-30T10:30:00+00:00"}))
    assert offsets(host.name) == {"chat-a": (0, None), "chat-b": (40, None)}
    counts = sync(demo_with(BOOT | {"chat-b": "2026-11-30T10:30:00+00:00"}, profile={"chat-a": "grid_a100d-20c"}))
    assert counts["consumer_offsets_cleared"] == 1
    assert offsets(host.name) == {"chat-a": (None, None), "chat-b": (40, None)}

"""The scale lab's MIG-enabled GPUs list only MIG-backed vGPU types, as a GPU in MIG mode reports them, so a sync
through vCenter reads an idle one as MIG (it used to read it as an empty same-size GPU and plans offered it to
time-sliced VMs)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.vcsim import REPO, start_lab


def _scale_lab_module():
    spec = importlib.util.spec_from_file_location("make_scale_lab", REPO / "tools" / "vcsim" / "make_scale_lab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scale = _scale_lab_module()


@pytest.mark.parametrize("gpus", [8, 4])  # HGX H100 hosts; PCIe A100 / L40S hosts
def test_mig_gpus_list_only_mig_types_and_the_others_every_type_of_their_mode(gpus):
    lab = scale.make_scale_lab(3, 12, gpus, 150, 1)
    seen = {"mig": 0, "vgpu": 0, "direct": 0}
    for host in lab["hosts"]:
        for g in host["gpus"]:
            is_mig = [scale.profile_gb(p)[1] for p in g["profiles"]]
            if g["graphics_type"] == "direct":
                seen["direct"] += 1
                assert g["profiles"] == []
            elif g["mig_enabled"]:
                seen["mig"] += 1
                assert g["vgpu_mode"] == "multiInstanceGpu"
                assert g["profiles"] and all(is_mig), (host["name"], g["pci_id"], g["profiles"])
            else:
                seen["vgpu"] += 1
                assert not all(is_mig)  # its time-sliced types (and the board's MIG types, if any)
            for c in g["consumers"]:
                assert c["profile"] is None or c["profile"] in g["profiles"]
    assert all(seen.values()), seen


def test_the_lab_is_deterministic_for_a_seed():
    assert scale.make_scale_lab(2, 5, 8, 40, 7) == scale.make_scale_lab(2, 5, 8, 40, 7)


@pytest.mark.vcsim
def test_a_synced_scale_lab_reads_idle_mig_gpus_as_mig(gpulab_binary, db, tmp_path):
    from inventory import occupancy, services
    from inventory.models import Gpu, VgpuMode

    lab = scale.make_scale_lab(2, 6, 8, 60, 3)
    mig_gpus = {(h["name"], g["pci_id"]) for h in lab["hosts"] for g in h["gpus"] if g["mig_enabled"]}
    idle = {
        (h["name"], g["pci_id"]) for h in lab["hosts"] for g in h["gpus"] if g["mig_enabled"] and not g["consumers"]
    }
    assert idle, "the seed must give idle MIG GPUs"
    path = tmp_path / "scale.json"
    path.write_text(json.dumps(lab))
    served = start_lab(path)
    try:
        vcenter = services.register_vcenter(
            name="scale",
            url=served.url,
            username=served.username,
            password=served.password,
            verify_tls=True,
            ca_file=served.cert_path,
        )
        services.sync_vcenter(vcenter=vcenter)
    finally:
        served.stop()
    stored = {
        (host, pci): occupancy.gpu_mode(gt, mode, mig)
        for host, pci, gt, mode, mig in Gpu.objects.values_list(
            "host__name", "pci_device__pci_id", "graphics_type", "vgpu_mode", "mig_enabled"
        )
    }
    assert {key for key, mode in stored.items() if mode == VgpuMode.MIG} == mig_gpus

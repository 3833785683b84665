"""gpulab morefs are stable per object (trial B-5): vcsim numbered objects by creation order, so removing a host from
a lab renamed every later host and VM, and the advisor (which keys inventory by moref, as a vCenter keeps them
stable) saw one host turn into another. A moref now follows from the object's kind and name only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyVmomi import vim

from inventory.vsphere.connection import Endpoint, connect
from tests.vcsim import LABS, Lab, start_lab

pytestmark = pytest.mark.vcsim

KINDS = (vim.Datacenter, vim.ClusterComputeResource, vim.HostSystem, vim.VirtualMachine)


def served_morefs(lab: Lab) -> dict[tuple[str, str], str]:
    """(managed object type, name) -> moref of every datacenter, cluster, host and VM the lab serves."""
    endpoint = Endpoint(url=lab.url, username=lab.username, password=lab.password, ca_file=lab.cert_path)
    with connect(endpoint) as si:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, list(KINDS), True)
        try:
            return {(obj._wsdlName, obj.name): obj._moId for obj in view.view}
        finally:
            view.Destroy()


def serve(path: Path) -> dict[tuple[str, str], str]:
    lab = start_lab(path)
    try:
        return served_morefs(lab)
    finally:
        lab.stop()


def changed_demo_lab(tmp_path: Path) -> Path:
    """The demo lab after a host (with its VM) and a VM on another host are removed, a VM moved to another host, a
    host to another cluster and one out of its cluster, and the hosts and VMs listed in reverse order."""
    lab = json.loads((LABS / "demo.json").read_text())
    removed_vms = {"llama-8b-nvl", "embed-svc"}
    lab["hosts"] = [host for host in lab["hosts"] if host["name"] != "esx-h100nvl-01.lab.local"][::-1]
    for host in lab["hosts"]:
        for gpu in host["gpus"]:
            gpu["consumers"] = [c for c in gpu["consumers"] if c["vm"] not in removed_vms]
        if host["name"] == "esx-a30-01.lab.local":
            host["cluster"] = "hgx-cluster"
        if host["name"] == "esx-a100-01.lab.local":
            host["cluster"] = None
    lab["vms"] = [vm for vm in lab["vms"] if vm["name"] not in removed_vms][::-1]
    for vm in lab["vms"]:
        if vm["name"] == "batch-x":  # no GPU consumers, so it can move alone
            vm["host"] = "esx-a30-01.lab.local"
    path = tmp_path / "demo-changed.json"
    path.write_text(json.dumps(lab))
    return path


def test_removing_moving_and_reordering_objects_keeps_every_other_moref(gpulab_binary, tmp_path):
    before = serve(LABS / "demo.json")
    after = serve(changed_demo_lab(tmp_path))

    assert len(set(before.values())) == len(before) == 1 + 2 + 5 + 8
    assert set(before) - set(after) == {
        ("HostSystem", "esx-h100nvl-01.lab.local"),
        ("VirtualMachine", "llama-8b-nvl"),
        ("VirtualMachine", "embed-svc"),
    }
    assert set(after) <= set(before)
    assert {key: before[key] for key in after} == after


def test_the_moref_of_an_object_does_not_depend_on_the_lab_around_it(gpulab_binary, tmp_path):
    """A host and a VM of the demo lab keep their morefs in a lab of their own, whatever else the demo holds."""
    demo = json.loads((LABS / "demo.json").read_text())
    host = next(h for h in demo["hosts"] if h["name"] == "esx-a30-01.lab.local")
    vm = next(v for v in demo["vms"] if v["name"] == "rag-embed")
    alone = {**demo, "clusters": [{"name": "pcie-cluster"}], "hosts": [host], "vms": [vm]}
    path = tmp_path / "alone.json"
    path.write_text(json.dumps(alone))

    before, after = serve(LABS / "demo.json"), serve(path)

    assert after == {key: before[key] for key in after}
    assert ("HostSystem", "esx-a30-01.lab.local") in after and ("VirtualMachine", "rag-embed") in after


@pytest.mark.django_db
def test_a_resync_after_the_lab_lost_a_host_keeps_every_host_and_vm_row_on_its_object(gpulab_binary, tmp_path):
    """The trial's reproduction: the advisor saw the A30 host under the removed H100 NVL host's row."""
    from inventory import services
    from inventory.models import Host, SyncStatus, VirtualMachine

    first = start_lab(LABS / "demo.json")
    try:
        vcenter = services.register_vcenter(
            name="lab", url=first.url, username=first.username, password=first.password, ca_file=first.cert_path
        )
        assert services.sync_vcenter(vcenter=vcenter).status == SyncStatus.SUCCESS
    finally:
        first.stop()
    hosts = dict(Host.objects.filter(vcenter=vcenter).values_list("pk", "name"))
    vms = dict(VirtualMachine.objects.filter(vcenter=vcenter).values_list("pk", "name"))

    port = first.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    second = start_lab(changed_demo_lab(tmp_path), listen=f"127.0.0.1:{port}")
    try:
        Path(vcenter.ca_file).write_text(Path(second.cert_path).read_text())  # the restarted lab's new certificate
        assert services.sync_vcenter(vcenter=vcenter).status == SyncStatus.SUCCESS
    finally:
        second.stop()

    assert dict(Host.objects.filter(vcenter=vcenter).values_list("pk", "name")) == hosts
    assert dict(VirtualMachine.objects.filter(vcenter=vcenter).values_list("pk", "name")) == vms
    assert set(Host.objects.filter(vcenter=vcenter, stale=True).values_list("name", flat=True)) == {
        "esx-h100nvl-01.lab.local"
    }
    assert set(VirtualMachine.objects.filter(vcenter=vcenter, stale=True).values_list("name", flat=True)) == {
        "llama-8b-nvl",
        "embed-svc",
    }

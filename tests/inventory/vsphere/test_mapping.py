"""Mapping pyVmomi data objects (as the SOAP decoder builds them) into snapshot dataclasses."""

import dataclasses
from datetime import UTC, datetime

from pyVmomi import vim

from inventory.vsphere.mapping import map_host, map_numa, map_pci_device, map_vm, resolve_datacenters


def test_signed_shorts_are_folded_back_to_pci_ids():
    dev = vim.host.PciDevice(
        id="0000:16:00.0",
        classId=0x0604,
        vendorId=0x1000,
        deviceId=-16336,
        subVendorId=-1,
        subDeviceId=0,
        vendorName="Broadcom",
        deviceName="PEX890xx",
        parentBridge="0000:15:01.0",
        bus=0x16,
        slot=0,
        function=0,
    )
    snap = map_pci_device(dev)
    assert snap.device_id == 0xC030 and snap.subvendor_id == 0xFFFF
    assert snap.parent == "0000:15:01.0"


def test_uppercase_pci_ids_are_normalized():
    dev = vim.host.PciDevice(id="0000:3B:00.0", classId=0x0302, vendorId=0x10DE, deviceId=0x2330, parentBridge="")
    snap = map_pci_device(dev)
    assert snap.pci_id == "0000:3b:00.0" and snap.parent is None


def test_missing_numa_info_is_none_and_warned():
    assert map_numa(None) is None
    host = map_host("host-1", {"name": "esx"}, clusters=set())
    assert host.numa_nodes is None
    assert any("numaInfo" in w for w in host.warnings)


def test_numa_nodes_map_cpus_memory_and_pci_ids():
    info = vim.host.NumaInfo(
        type="NUMA",
        numNodes=1,
        numaNode=[
            vim.host.NumaNode(
                typeId=1, cpuID=[3, 1, 2], memoryRangeBegin=0, memoryRangeLength=2 * 1024**3, pciId=["0000:3B:00.0"]
            )
        ],
    )
    (node,) = map_numa(info)
    assert (node.node_id, node.cpu_ids, node.memory_mb, node.pci_ids) == (1, (1, 2, 3), 2048, ("0000:3b:00.0",))


def test_vm_devices_map_vgpu_passthrough_and_dynamic_backings():
    Pt = vim.vm.device.VirtualPCIPassthrough
    devices = [
        Pt(key=1, backing=Pt.VmiopBackingInfo(vgpu="grid_a100d-20c")),
        Pt(key=2, backing=Pt.DeviceBackingInfo(id="0000:3B:00.0", deviceId="2330", systemId="x", vendorId=0x10DE)),
        Pt(key=3, backing=Pt.DynamicBackingInfo(assignedId="0000:5e:00.0", customLabel="h100")),
        vim.vm.device.VirtualE1000(key=4),
    ]
    vm = map_vm(
        "vm-1",
        {
            "name": "llm",
            "config.hardware.device": devices,
            "runtime.powerState": "poweredOn",
            "config.memoryAllocation.reservation": None,
        },
    )
    assert [(d.kind, d.profile, d.pci_id) for d in vm.devices] == [
        ("vgpu", "grid_a100d-20c", None),
        ("passthrough", None, "0000:3b:00.0"),
        ("dynamic-passthrough", None, "0000:5e:00.0"),
    ]
    assert vm.memory_reservation_mb == 0 and vm.host_moref is None


def test_datacenter_resolution_follows_folders_and_survives_loops():
    parents = {
        "domain-c1": "group-h1",
        "group-h1": "datacenter-1",
        "datacenter-1": "group-d1",
        "loop-a": "loop-b",
        "loop-b": "loop-a",
    }
    resolved = resolve_datacenters(parents, {"datacenter-1"})
    assert resolved["domain-c1"] == "datacenter-1"
    assert "loop-a" not in resolved


def test_boot_time_is_read_as_an_aware_time_and_anything_else_is_none():
    aware = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert map_vm("vm-1", {"name": "a", "runtime.bootTime": aware}).boot_time == aware
    naive = map_vm("vm-1", {"name": "a", "runtime.bootTime": datetime(2026, 11, 30, 8, 0)}).boot_time
    assert naive == aware  # the SOAP decoder's times are UTC
    assert map_vm("vm-1", {"name": "a", "runtime.bootTime": "2026-11-30"}).boot_time is None
    assert map_vm("vm-1", {"name": "a"}).boot_time is None


HOSTILE_ID = "0000:41:00.0\nStop-Computer -Force #"  # a security review: a PCI id that ends a script comment


def test_a_pci_id_that_is_not_an_address_is_skipped_everywhere_with_a_warning_naming_the_device():
    pci = [
        vim.host.PciDevice(id="0000:3b:00.0", classId=0x0302, vendorId=0x10DE, deviceId=0x2330,
                           vendorName="NVIDIA Corporation", deviceName="GH100 [H100 SXM5 80GB]",
                           parentBridge="0000:3a:00.0\u202e"),
        vim.host.PciDevice(id=HOSTILE_ID, classId=0x0302, vendorId=0x10DE, deviceId=0x20B5,
                           vendorName="NVIDIA Corporation", deviceName="GA100 [A100 PCIe 80GB]"),
        vim.host.PciDevice(id="0000:5e:00.0 ", classId=0x0302, vendorId=0x10DE, deviceId=0x2330),
    ]  # fmt: skip
    numa = vim.host.NumaInfo(
        type="NUMA", numNodes=1,
        numaNode=[vim.host.NumaNode(typeId=0, cpuID=[0], pciId=["0000:3B:00.0", HOSTILE_ID, "3b:00.0"])],
    )  # fmt: skip
    props = {
        "name": "esx",
        "hardware.pciDevice": pci,
        "hardware.numaInfo": numa,
        "config.graphicsInfo": [
            vim.host.GraphicsInfo(pciId=HOSTILE_ID, deviceName="GA100", vendorName="NVIDIA", graphicsType="direct"),
            vim.host.GraphicsInfo(pciId="0000:3b:00.0", deviceName="GH100", vendorName="NVIDIA", graphicsType="shared"),
        ],
        "config.pciPassthruInfo": [vim.host.PciPassthruInfo(id=HOSTILE_ID, passthruEnabled=True, dependentDevice="")],
        "config.graphicsConfig": vim.host.GraphicsConfig(
            deviceType=[vim.host.GraphicsConfig.DeviceType(deviceId=HOSTILE_ID, graphicsType="direct")]
        ),
    }
    host = map_host("host-1", props, clusters=set())

    assert [d.pci_id for d in host.pci_devices] == ["0000:3b:00.0", "0000:5e:00.0"]
    assert host.pci_devices[0].parent is None  # its parent bridge held a format character
    assert host.numa_nodes[0].pci_ids == ("0000:3b:00.0",)
    assert [g.pci_id for g in host.graphics] == ["0000:3b:00.0"]
    assert host.passthru == () and host.device_graphics_types == {}
    assert "Stop-Computer" not in repr(dataclasses.replace(host, warnings=()))  # only the warnings quote it
    shown = repr(HOSTILE_ID)  # the id is quoted with its line break escaped: the warning stays one line
    assert (
        f"PCI device NVIDIA Corporation GA100 [A100 PCIe 80GB]: id (hardware.pciDevice.id) {shown} is not a PCI "
        "address like 0000:3b:00.0; the device is skipped"
    ) in host.warnings
    assert any(w.startswith("PCI device 0000:3b:00.0: parent bridge (parentBridge) '0000:3a:00.0\\u202e'")
               for w in host.warnings)  # fmt: skip
    assert any(w.startswith("NUMA node 0: PCI id (pciId) '3b:00.0' is not a PCI address") for w in host.warnings)
    for field in ("config.graphicsInfo.pciId", "config.pciPassthruInfo.id", "deviceType.deviceId"):
        assert any(field in w and shown in w for w in host.warnings), field
    assert all("\n" not in w for w in host.warnings)


def test_a_device_without_an_id_is_skipped_and_a_long_bad_id_is_cut_in_the_warning():
    pci = [
        vim.host.PciDevice(id="", classId=0x0302, vendorId=0x10DE, deviceId=0x2330),
        vim.host.PciDevice(id="x" * 500, classId=0x0604, vendorId=0x8086, deviceId=0x347A, deviceName="Root Port"),
    ]
    host = map_host("host-1", {"name": "esx", "hardware.pciDevice": pci}, clusters=set())
    assert host.pci_devices == ()
    assert (
        "PCI device 10de:2330: vCenter reported no id (hardware.pciDevice.id); the device is skipped" in host.warnings
    )
    assert any(w.startswith(f"PCI device Root Port: id (hardware.pciDevice.id) '{'x' * 40}'...") for w in host.warnings)


def test_a_vm_backing_id_that_is_not_an_address_matches_no_gpu():
    Pt = vim.vm.device.VirtualPCIPassthrough
    devices = [
        Pt(key=1, backing=Pt.DeviceBackingInfo(id=HOSTILE_ID, deviceId="2330", systemId="x", vendorId=0x10DE)),
        Pt(key=2, backing=Pt.DynamicBackingInfo(assignedId="0000:5e:00.0;x", customLabel="h100")),
    ]
    vm = map_vm("vm-1", {"name": "llm", "config.hardware.device": devices})
    assert [(d.kind, d.pci_id) for d in vm.devices] == [("passthrough", None), ("dynamic-passthrough", None)]


def test_numa_memory_prefers_memory_size_where_vsphere_8_zeroes_the_old_range():
    info = vim.host.NumaInfo(
        type="NUMA",
        numNodes=1,
        numaNode=[
            vim.host.NumaNode(typeId=0, cpuID=[0], memoryRangeBegin=0, memoryRangeLength=0, memorySize=4 * 1024**3)
        ],
    )
    (node,) = map_numa(info)
    assert node.memory_mb == 4096


def test_host_boot_time_is_mapped_aware():
    from datetime import UTC, datetime

    boot = datetime(2026, 11, 30, 8, 0)
    host = map_host("host-1", {"name": "esx", "runtime.bootTime": boot}, clusters=set())
    assert host.boot_time == boot.replace(tzinfo=UTC)
    assert map_host("host-1", {"name": "esx"}, clusters=set()).boot_time is None

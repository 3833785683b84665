"""Inventory documents: every problem is reported with its JSON path and reason."""

import copy
import json

import pytest

from inventory.exchange import InventoryFileError, snapshot_from_document
from tests.vcsim import LABS

DEMO = json.loads((LABS / "demo.json").read_text())


def broken(mutate) -> dict:
    doc = copy.deepcopy(DEMO)
    mutate(doc)
    return doc


def test_demo_lab_is_a_valid_document():
    snapshot = snapshot_from_document(DEMO)
    assert snapshot.counts() == {"datacenters": 1, "clusters": 2, "hosts": 5, "gpus": 20, "vms": 8}


@pytest.mark.reliability("parsers", "inventory document: bad fields")
@pytest.mark.parametrize(
    ("mutate", "path", "reason"),
    [
        (lambda d: d.pop("hosts"), "$.hosts", "missing"),
        (lambda d: d["hosts"][0].pop("name"), "$.hosts[0].name", "missing"),
        (lambda d: d["hosts"][1]["gpus"][0].update(pci_id="3b:00.0"), "$.hosts[1].gpus[0].pci_id", "not a PCI address"),
        (  # `$` matched before a trailing line break: the address then went into scripts with it
            lambda d: d["hosts"][1]["gpus"][0].update(pci_id="0000:3b:00.0\n"),
            "$.hosts[1].gpus[0].pci_id",
            "not a PCI address",
        ),
        (
            lambda d: d["hosts"][1]["gpus"][0].update(memory_mb=-5),
            "$.hosts[1].gpus[0].memory_mb",
            "must not be negative",
        ),
        (
            lambda d: d["hosts"][1]["gpus"][0].update(graphics_type="vdi"),
            "$.hosts[1].gpus[0].graphics_type",
            "not one of",
        ),
        (lambda d: d["hosts"][1]["gpus"][0].update(vgpu_mode="halfSize"), "$.hosts[1].gpus[0].vgpu_mode", "not one of"),
        (lambda d: d["hosts"][1]["gpus"][0].update(device_id="0xZZ"), "$.hosts[1].gpus[0].device_id", "not a hex id"),
        (
            lambda d: d["hosts"][1]["gpus"][0].update(pcie_path=["0000:ff:00.0"]),
            "$.hosts[1].gpus[0].pcie_path[0]",
            "not in bridges",
        ),
        (
            lambda d: d["hosts"][1]["gpus"][0].update(numa_node=1),
            "$.hosts[1].gpus[0].numa_node",
            "listed in numa_nodes",
        ),
        (lambda d: d["hosts"][1]["gpus"][0].update(module_id=0), "$.hosts[1].gpus[0].module_id", "must be 1..16"),
        (
            lambda d: d["hosts"][0]["gpus"][4]["consumers"][0].update(kind="shared"),
            "$.hosts[0].gpus[4].consumers[0].kind",
            "not one of",
        ),
        (
            lambda d: d["hosts"][0]["gpus"][4]["consumers"][0].pop("profile"),
            "$.hosts[0].gpus[4].consumers[0].profile",
            "missing",
        ),
        (lambda d: d["vms"][0].update(host="nowhere"), "$.vms[0].host", "unknown host"),
        (  # a VM renamed in the list but not in its GPU's consumers: it was imported as a phantom VM
            lambda d: d["vms"][0].update(name="renamed"),
            "$.hosts[0].gpus[4].consumers[0].vm",
            "'llama-70b-tp2-a' is not in $.vms",
        ),
        (lambda d: d["vms"][0].update(memory_reservation_mb=10**9), "$.vms[0].memory_reservation_mb", "exceeds"),
        (lambda d: d["vms"].append(dict(d["vms"][0])), "$.vms[8].name", "duplicate VM"),
        (lambda d: d["hosts"].append(dict(d["hosts"][0])), "$.hosts[5].name", "duplicate host"),
        (lambda d: d["hosts"][0].update(cpu={"sockets": "two"}), "$.hosts[0].cpu.sockets", "must be int"),
        (lambda d: d["hosts"][0].update(maintenance="yes"), "$.hosts[0].maintenance", "must be bool"),
        (lambda d: d["vms"][0].update(boot_time="2026-11-30 08:00"), "$.vms[0].boot_time", "with a zone"),
        (lambda d: d["vms"][0].update(boot_time="yesterday"), "$.vms[0].boot_time", "not an ISO 8601 time"),
        (lambda d: d["hosts"][0].update(boot_time="2026-11-30 08:00"), "$.hosts[0].boot_time", "with a zone"),
        (
            lambda d: d["vms"][0].update(boot_time="2026-11-30T08:00:00Z", power_state="poweredOff"),
            "$.vms[0].boot_time",
            "only a poweredOn VM",
        ),
    ],
)
def test_bad_fields_are_named(mutate, path, reason):
    with pytest.raises(InventoryFileError) as exc:
        snapshot_from_document(broken(mutate))
    assert exc.value.path == path
    assert reason in exc.value.reason


@pytest.mark.reliability("parsers", "inventory document: not an object")
def test_not_an_object():
    with pytest.raises(InventoryFileError, match=r"^\$: the document must be a JSON object"):
        snapshot_from_document([1, 2])


def test_a_host_boot_time_is_read():
    doc = broken(lambda d: d["hosts"][0].update(boot_time="2026-11-30T08:00:00Z"))
    host = snapshot_from_document(doc).hosts[0]
    assert host.boot_time is not None and host.boot_time.isoformat() == "2026-11-30T08:00:00+00:00"
    assert snapshot_from_document(broken(lambda d: None)).hosts[0].boot_time is None

"""Manual links: an admin declares what the API cannot see; it wins over every source and survives syncs."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from inventory import fabric, services
from inventory.models import FabricLink, Host, LinkOverride
from tests import factories
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db
NVL = "esx-h100nvl-01.lab.local"
PAIR = ("0000:18:00.0", "0000:19:00.0")


def demo() -> dict:
    return json.loads((LABS / "demo.json").read_text())


@pytest.fixture
def host():
    services.import_inventory(document=demo(), vcenter_name="demo")
    return Host.objects.get(name=NVL)


def pair_link(host: Host) -> FabricLink:
    return FabricLink.objects.get(host=host, gpu_a__pci_device__pci_id__in=PAIR, gpu_b__pci_device__pci_id__in=PAIR)


def test_override_wins_survives_a_resync_and_can_be_cleared(host):
    assert pair_link(host).kind == "PIX"
    fabric.set_link_override(host=host, pci_a=PAIR[1], pci_b=PAIR[0], kind="NVLINK", link_count=12, note="bridge")
    link = pair_link(host)
    assert (link.kind, link.link_count, link.source) == ("NVLINK", 12, "manual") and link.gbps > 100
    assert not any(
        f["code"] == "nvlink-missing" and PAIR[0] in f["gpus"] for f in Host.objects.get(pk=host.pk).fabric_findings
    )
    services.import_inventory(document=demo(), vcenter_name="demo")
    assert pair_link(host).source == "manual"
    assert fabric.clear_link_override(host=host, pci_a=PAIR[0], pci_b=PAIR[1]) == 1
    assert pair_link(host).kind == "PIX"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"pci_a": "0000:ff:00.0", "pci_b": PAIR[1], "kind": "NVLINK"}, "pci_a: '0000:ff:00.0' is not a GPU"),
        ({"pci_a": PAIR[0], "pci_b": PAIR[0], "kind": "NVLINK"}, "two different GPUs"),
        ({"pci_a": PAIR[0], "pci_b": PAIR[1], "kind": "QPI"}, "kind: 'QPI' is not one of"),
        ({"pci_a": PAIR[0], "pci_b": PAIR[1], "kind": "NVLINK", "gbps": -1}, "must not be negative"),
    ],
)
def test_bad_overrides_are_refused_and_nothing_is_stored(host, kwargs, fragment):
    with pytest.raises(fabric.TopologyImportError, match=fragment):
        fabric.set_link_override(host=host, **kwargs)
    assert not LinkOverride.objects.exists()
    assert pair_link(host).kind == "PIX"


def test_an_override_for_a_vanished_gpu_is_reported_not_fatal(host):
    fabric.set_link_override(host=host, pci_a=PAIR[0], pci_b=PAIR[1], kind="NVLINK", link_count=12)
    document = demo()
    nvl = next(h for h in document["hosts"] if h["name"] == NVL)
    nvl["gpus"] = [g for g in nvl["gpus"] if g["pci_id"] != PAIR[1]]
    for node in nvl["numa_nodes"]:
        node["pci_ids"] = [p for p in node["pci_ids"] if p != PAIR[1]]
    services.import_inventory(document=document, vcenter_name="demo")
    codes = {f["code"] for f in Host.objects.get(pk=host.pk).fabric_findings}
    assert "override-ignored" in codes


def test_override_command_names_the_option(host):
    with pytest.raises(CommandError, match="--gpus: give exactly two"):
        call_command("topology", "override", "--host", NVL, "--gpus", PAIR[0], "--kind", "NVLINK")
    with pytest.raises(CommandError, match="--kind: required"):
        call_command("topology", "override", "--host", NVL, "--gpus", ",".join(PAIR))
    call_command("topology", "override", "--host", NVL, "--gpus", ",".join(PAIR), "--kind", "nvlink", "--nvlinks", "12")
    assert pair_link(host).kind == "NVLINK"


def test_override_pair_is_ordered_and_unique():
    override = factories.LinkOverrideFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.LinkOverrideFactory(host=override.host)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.LinkOverrideFactory(pci_a="0000:19:00.0", pci_b="0000:18:00.0")

"""The PowerCLI script prints only escaped values (a security review: a PCI id holding a line break ended a comment
line and ran the rest as code), and a name with a bidi override in a code line gets a note that shows it escaped.
The sync refuses such PCI ids (tests/inventory/vsphere/test_mapping.py); these tests store them directly, as a
database written before that check, or by a bug, could hold them."""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings

from inventory import services as inventory_services
from inventory.models import Gpu, Host, PciDevice
from placement import selectors, services
from placement.handout import _PS_QUOTES, reservation_handout
from placement.validators import is_invisible
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

RLO_HOST = "esx-nvl\u202eexe.txt"
RLO_LABEL = "lbl\u202e1ldd"


@pytest.fixture
def demo(db):
    selectors.reset_snapshot_cache()
    inventory_services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")
    yield
    selectors.reset_snapshot_cache()


def split_powershell(script: str) -> tuple[str, list[str]]:
    """(the code outside string literals and comments, the comments): single-quoted literals end at any of the five
    quote characters PowerShell accepts, unless doubled; a comment runs from # to the end of its line."""
    code, comments, i = [], [], 0
    while i < len(script):
        ch = script[i]
        if ch in _PS_QUOTES:
            i += 1
            while i < len(script):
                if script[i] in _PS_QUOTES:
                    if i + 1 < len(script) and script[i + 1] in _PS_QUOTES:
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif ch == "#":
            end = script.find("\n", i)
            end = len(script) if end < 0 else end
            comments.append(script[i:end])
            i = end
        else:
            code.append(ch)
            i += 1
    return "".join(code), comments


def hostile_script(**request) -> str:
    reservation = services.reserve(request=services.build_request(**request), vm_name="victim", user=None)[0]
    items = list(reservation.items.select_related("gpu__pci_device").order_by("pci_id"))
    for n, item in enumerate(items):  # 15 characters: fits PciDevice.pci_id (varchar 16)
        PciDevice.objects.filter(pk=item.gpu.pci_device_id).update(pci_id=f"{n}\nstop-computer")
    Gpu.objects.filter(pk__in=[i.gpu_id for i in items]).update(hardware_label=RLO_LABEL)
    Host.objects.filter(pk=reservation.host_id).update(name=RLO_HOST)
    r = (
        selectors.reservations_with_status()
        .select_related("host__vcenter", "host__cluster", "vcenter")
        .get(pk=reservation.pk)
    )
    return reservation_handout(r).powercli


CASES = {
    "passthrough": {"gpus_per_vm": 2, "consumption": "passthrough"},
    "dynamic-passthrough": {"gpus_per_vm": 2, "consumption": "dynamic-passthrough", "clusters": ["pcie-cluster"]},
    "vgpu": {"gpus_per_vm": 2, "consumption": "vgpu", "profile": "nvidia_h100xm-80c"},
    "mig": {"gpus_per_vm": 1, "consumption": "mig", "profile": "grid_a30-1-6c"},
    "device-group": {"gpus_per_vm": 2, "consumption": "device-group", "profile": "nvidia_h100xm-80c"},
}


@pytest.mark.parametrize("case", CASES)
def test_a_pci_id_with_a_line_break_stays_inside_its_comment_or_string(demo, case):
    script = hostile_script(**CASES[case])
    code, comments = split_powershell(script)
    assert "stop-computer" not in code.lower()  # before the fix: a statement of its own after "# planned on 0"
    assert any("0\\nstop-computer" in c for c in comments)  # the comment shows the id, its line break escaped
    for comment in comments:
        assert not any(is_invisible(ch) for ch in comment), comment


@pytest.mark.parametrize("case", CASES)
def test_a_code_line_holding_a_bidi_override_is_announced_by_a_note_above_it(demo, case):
    lines = hostile_script(**CASES[case]).splitlines()
    code_lines = [i for i, line in enumerate(lines) if "\u202e" in line]
    assert code_lines, "the host name stays exact in Get-VMHost"
    for i in code_lines:
        assert not lines[i].startswith("#")
        note = lines[i - 1]
        assert note.startswith("# NOTE: the ") and "invisible or control characters" in note, (lines[i], note)
        assert "\\u202e" in note and "\u202e" not in note
    host_line = next(i for i in code_lines if "Get-VMHost -Name" in lines[i])
    assert lines[host_line] == (
        f"$vmhost = @(Get-VMHost -Name ([WildcardPattern]::Escape('{RLO_HOST}')) -Server $server)"
    )  # matches vCenter
    assert lines[host_line - 1] == (
        "# NOTE: the host name on the next line holds invisible or control characters, kept because it must match "
        "vCenter exactly; escaped, it is 'esx-nvl\\u202eexe.txt'"
    )
    if case == "dynamic-passthrough":
        assert any("CustomLabel" in lines[i] for i in code_lines)


def test_a_plain_script_has_no_notes(demo):
    reservation = services.reserve(
        request=services.build_request(gpus_per_vm=1, consumption="passthrough"), vm_name="plain", user=None
    )[0]
    r = selectors.reservations_with_status().get(pk=reservation.pk)
    assert "# NOTE" not in reservation_handout(r).powercli


def test_the_template_prints_only_values_made_safe_for_powershell():
    """Every ``{{ }}`` of reservation.ps1 prints a value of ``_powershell_values`` (``ps.*``, ``d.*`` of
    ``ps.devices``: quoted, escaped or a number) or the loop counter; never the settings or the reservation."""
    template = (settings.BASE_DIR / "templates" / "placement" / "reservation.ps1").read_text()
    printed = re.findall(r"{{\s*(.*?)\s*}}", template)
    assert printed
    raw = [p for p in printed if not re.fullmatch(r"(ps|d)\.\w+|forloop\.counter\|add:\d+", p)]
    assert raw == []
    assert "{% for d in ps.devices %}" in template and not re.search(r"{%\s*for\s+d\s+in\s+(?!ps\.devices)", template)


def test_a_wildcard_in_a_vm_name_selects_exactly_that_vm(demo):
    """Trial H #2: `Get-VM -Name 'chat*'` matched chat-a and chat-b, and the script reconfigured both."""
    reservation = services.reserve(
        request=services.build_request(gpus_per_vm=1, consumption="passthrough"), vm_name="chat*", user=None
    )[0]
    script = reservation_handout(selectors.reservations_with_status().get(pk=reservation.pk)).powercli
    assert "$vm = @(Get-VM -Name ([WildcardPattern]::Escape('chat*')) -Server $server)" in script
    assert "if ($vm.Count -ne 1) { throw" in script and "if ($vmhost.Count -ne 1) { throw" in script
    assert "Get-VM -Name 'chat*'" not in script

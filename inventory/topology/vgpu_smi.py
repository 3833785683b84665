"""Parsers for where running vGPUs sit on their GPU: ``nvidia-smi vgpu -q`` and ``nvidia-smi mig -lgi``.

vCenter says which GPU a vGPU VM uses, never where on the GPU: the mixed-size placement ID (the GB offset
its framebuffer starts at) and, for MIG-backed vGPUs, the GPU instance and its memory-slice placement are
only known to the NVIDIA host driver. These parsers read the two outputs that carry them:

- ``nvidia-smi vgpu -q``: per GPU (``GPU 00000000:3B:00.0``) and per vGPU: ``VM Name``, ``vGPU Name``,
  ``GPU Instance ID`` (``N/A`` for time-sliced vGPUs), ``Placement ID`` and ``FB Memory Usage / Total``.
- ``nvidia-smi mig -lgi``: per GPU index, GPU instances with profile, instance id and ``Start:Size``.

Both are strict about what they take: text that is not that output is a ``SmiParseError`` naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inventory.topology.smi import SmiParseError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_GPU_HEADER = re.compile(r"^GPU\s+([0-9A-Fa-f]{4,8}):([0-9A-Fa-f]{2}):([0-9A-Fa-f]{2})\.([0-7])\s*$")
_FIELD = re.compile(r"^(\s*)([A-Za-z][A-Za-z0-9 ()/_.-]*?)\s*:\s*(.*?)\s*$")
_SECTION = re.compile(r"^(\s+)([A-Za-z][A-Za-z0-9 ()/_.-]*?)\s*$")
# Numbers are ASCII digits of bounded length (str.isdigit and \d accept superscripts, which int() refuses,
# and int() refuses more than 4,300 digits).
_NUMBER = re.compile(r"[0-9]{1,9}")
_MIB = re.compile(r"^([0-9]{1,9})\s*MiB$")
_LGI_ROW = re.compile(
    r"^\|\s*([0-9]{1,9})\s+MIG\s+(\S+)\s+([0-9]{1,9})\s+([0-9]{1,9})\s+([0-9]{1,9}):([0-9]{1,9})\s*\|$"
)
_LGI_RULE = re.compile(r"^\+[-=+]+\+$|^\|[=]+\|$")
# The vGPU type at the end of a driver's vGPU Name: "GRID A100D-20C", "NVIDIA H100XM-1-10C", "... DC-3Q".
_VGPU_TYPE = re.compile(r"(?:^|\s)([A-Za-z0-9]+(?:-[0-9])?-[0-9]{1,6}[A-Za-z]+)$")
_LGI_HEADER_WORDS = ("GPU instances", "GPU   Name", "ID       ID", "Start:Size", "Profile", "Placement")
# Lines of a vGPU block that always carry a value: printed without a colon, the capture was cut inside the line.
_VALUE_FIELDS = frozenset(
    ("Active vGPUs", "vGPU ID", "VM Name", "VM UUID", "vGPU Name", "vGPU Type", "vGPU UUID", "GPU Instance ID",
     "Placement ID", "Total", "Used", "Free")
)  # fmt: skip
_CUT_OFF = "the capture looks cut off"
MAX_TEXT = 256 * 1024


@dataclass(frozen=True)
class RunningVgpu:
    gpu_pci_id: str  # SBDF as vSphere writes it: 0000:3b:00.0
    vm_name: str
    vgpu_name: str
    gpu_instance_id: int | None  # MIG-backed vGPU: its GPU instance on the GPU; None when time-sliced
    placement_id: int | None  # time-sliced: start offset in GB (mixed-size placement ID); None when not shown
    framebuffer_mib: int | None
    line: int  # where its block starts


@dataclass(frozen=True)
class GpuInstance:
    gpu_index: int
    profile: str  # "3g.40gb", "1g.10gb+me"
    profile_id: int
    instance_id: int
    start: int  # first memory slice
    size: int  # memory slices
    line: int


def sbdf(domain: str, bus: str, device: str, function: str) -> str:
    """nvidia-smi prints an 8-digit domain (00000000:3B:00.0); vSphere a 4-digit one (0000:3b:00.0)."""
    value = int(domain, 16)
    if value > 0xFFFF:
        raise ValueError(f"PCI domain {domain} does not fit 16 bits")
    return f"{value:04x}:{bus.lower()}:{device.lower()}.{function}"


def vgpu_type_suffix(vgpu_name: str) -> str | None:
    """The vGPU type a driver's ``vGPU Name`` ends in, spelled as in a vSphere type name after its ``grid_`` or
    ``nvidia_`` prefix ("GRID A100D-20C" -> "a100d-20c"); None when the name does not end in a type."""
    match = _VGPU_TYPE.search(vgpu_name.strip())
    return match.group(1).lower() if match else None


def _lines(text: str, what: str) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        raise SmiParseError(f"the {what} text is empty")
    if len(text) > MAX_TEXT:
        raise SmiParseError(f"the {what} text is {len(text)} characters; at most {MAX_TEXT} are read")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, 1):
        if _CONTROL.search(line):
            raise SmiParseError("control characters: this is not nvidia-smi text", number)
    return lines


def _int_or_none(value: str, field: str, number: int) -> int | None:
    if value.upper().startswith("N/A"):
        return None
    if not _NUMBER.fullmatch(value):
        raise SmiParseError(f"{field} must be a whole number or N/A, got {value!r}", number)
    return int(value)


def parse_vgpu_query(text: str) -> tuple[RunningVgpu, ...]:
    """The vGPUs in ``nvidia-smi vgpu -q`` output, in the order printed."""
    lines = _lines(text, "nvidia-smi vgpu -q")
    found: list[RunningVgpu] = []
    gpu: str | None = None
    current: dict | None = None
    section: tuple[int, str] | None = None  # (indent, name) of the open sub-section, e.g. FB Memory Usage
    saw_gpu = False
    last = max((n for n, raw in enumerate(lines, 1) if raw.strip()), default=0)

    def close() -> None:
        nonlocal current
        if current is None:
            return
        if not current.get("vm_name"):
            raise SmiParseError("this vGPU has no 'VM Name' line", current["line"])
        found.append(
            RunningVgpu(
                gpu_pci_id=current["gpu"],
                vm_name=current["vm_name"],
                vgpu_name=current.get("vgpu_name", ""),
                gpu_instance_id=current.get("gi"),
                placement_id=current.get("placement"),
                framebuffer_mib=current.get("fb"),
                line=current["line"],
            )
        )
        current = None

    for number, raw in enumerate(lines, 1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "$")) or stripped.startswith("====") or stripped == "":
            continue
        header = _GPU_HEADER.match(stripped)
        if header and not raw.startswith((" ", "\t")):
            close()
            try:
                gpu = sbdf(*header.groups())
            except ValueError as exc:
                raise SmiParseError(str(exc), number) from None
            saw_gpu, section = True, None
            continue
        if not saw_gpu:
            if stripped.lower().startswith(("timestamp", "driver version", "cuda version", "vgpu driver")):
                continue
            raise SmiParseError(f"expected a 'GPU 00000000:3B:00.0' line first, got {stripped[:60]!r}", number)
        field = _FIELD.match(line)
        if field is None:
            sub = _SECTION.match(line)
            if sub is None:
                raise SmiParseError(f"not a 'Name : value' line: {stripped[:60]!r}", number)
            name = sub.group(2).strip()
            if name in _VALUE_FIELDS:
                raise SmiParseError(f"{name!r} has no value ({_CUT_OFF})", number)
            depth = len(sub.group(1).expandtabs())
            if current is not None and depth <= current["indent"]:
                # a vGPU's sub-sections (FB Memory Usage, Utilization) sit under its fields; text at the level of the
                # vGPU ID line or above would otherwise hide the VM Name and Placement ID lines under it
                raise SmiParseError(f"not a 'Name : value' line: {stripped[:60]!r}", number)
            if number == last:  # a sub-section heading with nothing under it ends the text
                raise SmiParseError(f"{name!r} ends the text with nothing after it ({_CUT_OFF})", number)
            section = (depth, name)
            continue
        indent, name, value = len(field.group(1).expandtabs()), field.group(2).strip(), field.group(3)
        if section is not None and indent <= section[0]:
            section = None
        if name == "vGPU ID":
            close()
            current = {"gpu": gpu, "line": number, "indent": indent}
            continue
        if name == "Active vGPUs":
            if not _NUMBER.fullmatch(value):
                raise SmiParseError(f"Active vGPUs must be a number, got {value!r}", number)
            continue
        if current is None:
            continue  # GPU-level lines before the first vGPU
        if section is not None:
            if section[1] == "FB Memory Usage" and name == "Total":
                size = _MIB.match(value)
                if size is None:
                    raise SmiParseError(f"FB Memory Usage Total must be 'N MiB', got {value!r}", number)
                current["fb"] = int(size.group(1))
            continue
        if name == "VM Name":
            if not value:
                raise SmiParseError("VM Name is empty", number)
            current["vm_name"] = value
        elif name == "vGPU Name":
            current["vgpu_name"] = value
        elif name == "GPU Instance ID":
            current["gi"] = _int_or_none(value, name, number)
        elif name == "Placement ID":
            current["placement"] = _int_or_none(value, name, number)
    close()
    if not saw_gpu:
        raise SmiParseError("no 'GPU 00000000:3B:00.0' line: this is not `nvidia-smi vgpu -q` output")
    return tuple(found)


def parse_mig_lgi(text: str) -> tuple[GpuInstance, ...]:
    """The GPU instances in ``nvidia-smi mig -lgi`` output (all GPUs, or one with ``-i``)."""
    lines = _lines(text, "nvidia-smi mig -lgi")
    found: list[GpuInstance] = []
    saw_table = False
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith(("#", "$")):
            continue
        if _LGI_RULE.match(stripped):
            saw_table = True
            continue
        if stripped.startswith("|") and any(word in stripped for word in _LGI_HEADER_WORDS):
            saw_table = True
            continue
        if stripped.lower().startswith("no gpu instances found"):
            saw_table = True
            continue
        row = _LGI_ROW.match(stripped)
        if row is None:
            raise SmiParseError(f"not a GPU-instance row of `nvidia-smi mig -lgi`: {stripped[:60]!r}", number)
        index, profile, profile_id, instance_id, start, size = row.groups()
        if not re.fullmatch(r"[0-9]{1,2}g\.[0-9]{1,4}gb(\+me)?", profile):
            raise SmiParseError(f"{profile!r} is not a MIG profile name like 3g.40gb", number)
        if int(size) == 0:
            raise SmiParseError("a GPU instance of size 0", number)
        found.append(GpuInstance(int(index), profile, int(profile_id), int(instance_id), int(start), int(size), number))
    if not saw_table and not found:
        raise SmiParseError("no GPU-instance table: this is not `nvidia-smi mig -lgi` output")
    seen: dict[tuple[int, int], int] = {}
    for gi in found:
        key = (gi.gpu_index, gi.instance_id)
        if key in seen:
            raise SmiParseError(f"GPU {gi.gpu_index} lists instance {gi.instance_id} twice", gi.line)
        seen[key] = gi.line
    return tuple(found)

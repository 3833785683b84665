"""NVIDIA board facts the advisor relies on: vGPU tables, mixed-size placement IDs, MIG geometry, bandwidths.

The data is the project's own copy (``data/nvidia-gpu-catalog.json``, sources named inside it) of NVIDIA's
published vGPU and MIG tables; this module turns it into frozen dataclasses once per process.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

CATALOG_PATH = Path(__file__).with_name("data") / "nvidia-gpu-catalog.json"

NVIDIA_VENDOR_ID = 0x10DE
PCI_CLASS_BRIDGE = 0x0604
PCI_CLASS_GPU = (0x0302, 0x0300)
NVSWITCH_DEVICE_IDS = frozenset({0x1AF1, 0x22A3})  # NVSwitch gen 2 (HGX A100), gen 3 (HGX H100/H200)
SXM_DEVICE_IDS = frozenset({0x20B0, 0x20B2, 0x2330, 0x2335, 0x2901})

# NVIDIA Fabric Manager partitions of an 8-GPU HGX baseboard, by module id (FM user guide, HGX A100/H100):
# the whole board, the two halves, four pairs (1,3 / 2,4 / 5,7 / 6,8) and eight singles. A multi-GPU VM under
# vSphere must get exactly one of them (DOMAIN.md 3.7).
HGX8_PARTITIONS_BY_MODULE = (
    (1, 2, 3, 4, 5, 6, 7, 8),
    (1, 2, 3, 4), (5, 6, 7, 8),
    (1, 3), (2, 4), (5, 7), (6, 8),
    (1,), (2,), (3,), (4,), (5,), (6,), (7,), (8,),
)  # fmt: skip

# What vSphere refuses on an NVSwitch (HGX) board (DOMAIN.md 3.7: time-sliced vGPU only). The engine's HgxRules asks it
# of a request, the inventory of a GPU's mode (an idle passthrough or MIG GPU there is unavailable, not free).
NVSWITCH_REFUSES_PASSTHROUGH = "passthrough"
NVSWITCH_REFUSES_MIG = "mig"


def nvswitch_refusal(*, whole_gpu: bool, mig: bool) -> str:
    """What vSphere refuses of a use on an NVSwitch board: ``NVSWITCH_REFUSES_PASSTHROUGH`` for a whole GPU
    (passthrough), ``NVSWITCH_REFUSES_MIG`` for a MIG-backed vGPU, "" for a time-sliced vGPU (allowed)."""
    if whole_gpu:
        return NVSWITCH_REFUSES_PASSTHROUGH
    if mig:
        return NVSWITCH_REFUSES_MIG
    return ""


@dataclass(frozen=True)
class MigProfile:
    id: int
    name: str  # e.g. "3g.40gb" or "1g.10gb+me"
    compute_slices: int
    memory_slices: int
    max_per_gpu: int
    placements: tuple[int, ...]

    @property
    def media_extensions(self) -> bool:
        return self.name.endswith("+me")

    @property
    def memory_gb(self) -> int:
        return int(re.search(r"\.(\d+)gb", self.name).group(1))  # type: ignore[union-attr]


@dataclass(frozen=True)
class MigGeometry:
    compute_slices: int
    memory_slices: int
    profiles: tuple[MigProfile, ...]

    def profile(self, compute_slices: int, memory_gb: int, media_extensions: bool = False) -> MigProfile | None:
        for p in self.profiles:
            if (
                p.compute_slices == compute_slices
                and p.memory_gb == memory_gb
                and p.media_extensions == media_extensions
            ):
                return p
        return None

    def by_name(self, name: str) -> MigProfile | None:
        return next((p for p in self.profiles if p.name == name), None)


@dataclass(frozen=True)
class TimeSlicedProfile:
    framebuffer_gb: int
    max_equal: int  # per GPU in same-size mode
    max_mixed: int  # per GPU in mixed-size mode
    placement_ids_gb: tuple[int, ...] | None  # mixed-size start offsets; None when unpublished


NVLINK_BRIDGE = "bridge"
NVLINK_NVSWITCH = "nvswitch"


@dataclass(frozen=True)
class FormFactor:
    """One card or baseboard a catalog board covers, by the vSphere type codes it runs ("a100d": the PCIe card)."""

    codes: tuple[str, ...]
    name: str  # "H100 NVL", "HGX H100 (SXM5)"
    nvlink: str | None  # NVLINK_BRIDGE, NVLINK_NVSWITCH, or None (no NVLink)
    nvlink_domain_gpus: tuple[int, ...] = ()  # sizes one NVLink domain can have: (2,) a bridged pair, (2, 4), (8,)

    @property
    def nvswitch(self) -> bool:
        """An HGX baseboard: vSphere allows time-sliced vGPU only, several GPUs as one Fabric Manager partition."""
        return self.nvlink == NVLINK_NVSWITCH

    @property
    def most_nvlinked(self) -> int:
        """The most GPUs one NVLink domain of this form joins (0 without NVLink)."""
        return max(self.nvlink_domain_gpus, default=0) if self.nvlink else 0


@dataclass(frozen=True)
class Board:
    key: str  # "H100-80GB"
    board_codes: tuple[str, ...]  # vSphere profile codes: "h100", "h100xm"
    framebuffer_gb: int
    nvlink_generation: int | None
    pcie_gen: int
    timesliced: dict[int, TimeSlicedProfile] = field(default_factory=dict)
    mig: MigGeometry | None = None
    pci_device_ids: tuple[int, ...] = ()
    vgpu_series: tuple[str, ...] = ()  # "C", "Q", "B", "A" types NVIDIA publishes for the board; () when unknown
    form_factors: tuple[FormFactor, ...] = ()  # the cards and baseboards of this key, by type code; () when unknown
    memory_type: str = ""  # "HBM3", "GDDR6"; "" when unknown
    usable_mib: int | None = None  # memory total nvidia-smi reports for a whole GPU; None when no source was found

    @property
    def supports_mixed_size(self) -> bool:
        return any(p.placement_ids_gb is not None for p in self.timesliced.values())

    @property
    def hbm(self) -> bool:
        return self.memory_type.upper().startswith("HBM")

    def form_factor(self, code: str) -> FormFactor | None:
        """The card or baseboard that runs the vSphere type code ``code`` ("h100xm": HGX H100)."""
        code = code.lower()
        return next((f for f in self.form_factors if code in f.codes), None)

    def __hash__(self) -> int:
        return hash(self.key)


@dataclass(frozen=True)
class Catalog:
    boards: dict[str, Board]
    nvlink_gbps_per_link: dict[int, float]
    nvlink_links_per_gpu: dict[str, int]
    pcie_x16_gbps: dict[int, float]
    inter_socket_gbps: dict[str, float]
    pci_device_names: dict[int, str]

    def board_for_code(self, code: str) -> Board | None:
        code = code.lower()
        for board in self.boards.values():
            if code in board.board_codes:
                return board
        return None

    def board_for_device(self, device_id: int | None, name: str = "", memory_mb: int | None = None) -> Board | None:
        """Best board match for a PCI function: device id first, then the marketing name and framebuffer.

        Several catalog ids come from NVIDIA's GPU-operator groupings, so a name or framebuffer that
        disagrees with the id wins (the catalog's own advice).
        """
        by_name = board_by_name(self.boards, name, memory_mb)
        if by_name is not None:
            return by_name
        if device_id is not None:
            for board in self.boards.values():
                if device_id in board.pci_device_ids:
                    return board
        return None

    def nvlink_gbps(self, generation: int | None, links: int) -> float:
        """Per-direction NVLink bandwidth of ``links`` bonded links (generation 4 when unknown)."""
        per_link = self.nvlink_gbps_per_link.get(generation or 4, self.nvlink_gbps_per_link[4])
        return round(per_link * links, 1)

    def pcie_gbps(self, generation: int | None) -> float:
        return self.pcie_x16_gbps.get(generation or 4, self.pcie_x16_gbps[4])


def _board(key: str, raw: dict) -> Board:
    placements = raw.get("mixed_placement_ids_gb") or {}
    timesliced = {}
    for suffix, (eq, mixed) in (raw.get("timesliced") or {}).items():
        gb = int(suffix.rstrip("C"))
        ids = placements.get(suffix)
        timesliced[gb] = TimeSlicedProfile(gb, eq, mixed, tuple(ids) if ids is not None else None)
    mig = None
    ids: tuple[int, ...] = ()
    if raw.get("mig"):
        m = raw["mig"]
        mig = MigGeometry(
            compute_slices=m["compute_slices"],
            memory_slices=m["mem_slices"],
            profiles=tuple(
                MigProfile(p["id"], p["name"], p["g"], p["size"], p["max"], tuple(p["placements"]))
                for p in m["profiles"]
            ),
        )
        ids = tuple(int(x, 16) for x in m.get("pci_device_ids_gpu_operator_group", []))
    return Board(
        key=key,
        board_codes=tuple(raw["vsphere_board_codes"]),
        framebuffer_gb=raw["framebuffer_gb"],
        nvlink_generation=raw.get("nvlink_generation"),
        pcie_gen=raw.get("pcie_gen") or 4,
        timesliced=timesliced,
        mig=mig,
        pci_device_ids=ids,
        vgpu_series=tuple(raw.get("vgpu_series") or ()),
        form_factors=tuple(
            FormFactor(
                tuple(f["vsphere_board_codes"]), f["name"], f.get("nvlink"), tuple(f.get("nvlink_domain_gpus") or ())
            )
            for f in raw.get("form_factors") or ()
        ),
        memory_type=raw.get("memory_type") or "",
        usable_mib=raw.get("usable_mib"),
    )


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    raw = json.loads(Path(path).read_text())
    names = {int(k, 16): v for k, v in raw["pci"]["device_ids_examples"].items()}
    boards = {key: _board(key, b) for key, b in raw["boards"].items()}
    # Ids the per-model table names precisely (e.g. L40S, L4) complete the operator groupings.
    for dev_id, name in names.items():
        board = board_by_name(boards, name)
        if board is not None and dev_id not in board.pci_device_ids:
            boards[board.key] = Board(**{**board.__dict__, "pci_device_ids": (*board.pci_device_ids, dev_id)})
    bw = raw["interconnect_gbps_per_direction"]
    return Catalog(
        boards=boards,
        nvlink_gbps_per_link={int(k): float(v) for k, v in bw["nvlink_per_link"].items()},
        nvlink_links_per_gpu=dict(bw["nvlink_links_per_gpu"]),
        pcie_x16_gbps={int(k): float(v) for k, v in bw["pcie_x16"].items()},
        inter_socket_gbps={k: float(v) for k, v in bw["inter_socket_nccl_model"].items()},
        pci_device_names=names,
    )


def board_by_name(boards: dict[str, Board], name: str, memory_mb: int | None = None) -> Board | None:
    text = name.upper()
    if not text.strip():
        return None
    family = None
    for candidate in ("H200", "H100", "A100", "A30", "L40S", "L40", "L4", "B200"):
        # a whole model number: GH200 (Grace Hopper), GB200, the RTX A1000 and A3000 only contain a family
        if re.search(rf"(?<![A-Z0-9]){candidate}(?![0-9])", text):
            family = candidate
            break
    if family is None:
        return None
    if family == "L40":
        family = "L40S"
    options = [b for b in boards.values() if b.key.split("-")[0] == family]
    if not options:
        return None
    if len(options) == 1:
        return options[0]
    if memory_mb:
        gb = memory_mb / 1024
        return min(options, key=lambda b: abs(b.framebuffer_gb - gb))
    match = re.search(r"(?<![\w])(\d+)\s*GB", name.upper())
    if match:
        gb = int(match.group(1))
        return min(options, key=lambda b: abs(b.framebuffer_gb - gb))
    return None

"""What a user asks the engine for: N GPUs per VM, how they are consumed, a profile, constraints."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from gpucatalog.catalog import Board, load_catalog
from gpucatalog.limits import MAX_GPUS_PER_VM
from gpucatalog.profiles import (
    DeviceGroupName,
    ProfileNameError,
    VgpuProfileName,
    parse_device_group_name,
    parse_profile_name,
    series_problem,
)

CONSUMPTIONS = ("passthrough", "dynamic-passthrough", "vgpu", "mig", "device-group")
# Consumptions whose physical GPU vSphere picks when the VM powers on (a Dynamic DirectPath device among those
# matching its label, a vGPU's GPU by the host's assignment policy, a MIG instance's slot): the advisor can only
# predict it. Static passthrough names its device in the VM's configuration.
VSPHERE_PICKS_GPU = ("dynamic-passthrough", "vgpu", "mig", "device-group")
INTERCONNECTS = ("nvlink", "same-numa", "same-pcie-switch", "any")
# vSphere 8 configuration maximums for one VM: 768 vCPUs, 24 TB of memory
MAX_VCPUS = 768
MAX_MEMORY_MB = 24 * 1024 * 1024
MAX_VMS = 256  # replicas planned jointly in one request
MAX_HARDWARE_LABEL = 200  # the inventory column (vSphere labels are short free text)
MAX_FRAMEBUFFER_GB = 1024


class RequestError(ValueError):
    """A request that cannot be planned; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PlacementRequest:
    gpus_per_vm: int
    consumption: str
    profile: str | None = None
    vms: int = 1
    board: str | None = None  # catalog key like "H100-80GB"
    min_framebuffer_gb: int | None = None
    interconnect: str = "any"
    vcpus: int = 0
    memory_mb: int = 0
    anti_affinity: bool = False
    clusters: tuple[str, ...] = ()
    # Dynamic DirectPath I/O: vSphere gives the VM a free GPU of the right vendor/device id whose hardware label
    # matches its device's custom label; None: any label
    hardware_label: str | None = None

    @property
    def whole_gpu(self) -> bool:
        return self.consumption in ("passthrough", "dynamic-passthrough")

    @cached_property
    def device_group(self) -> DeviceGroupName | None:
        if self.consumption != "device-group" or not self.profile or "@" not in self.profile:
            return None
        return parse_device_group_name(self.profile)

    @cached_property
    def vgpu_profile(self) -> VgpuProfileName | None:
        """The parsed vGPU type (for a device group, the type of its members); None for whole GPUs."""
        if not self.profile or self.whole_gpu:
            return None
        group = self.device_group
        return group.profile if group is not None else parse_profile_name(self.profile)

    @property
    def fractional(self) -> bool:
        p = self.vgpu_profile
        return p is not None and not p.is_full_framebuffer

    @property
    def separate_vgpus(self) -> bool:
        """Several time-sliced vGPUs added one by one (not a device group): the host assigns each by its policy and
        none of them gets NVLink P2P (DOMAIN 3.6)."""
        return self.consumption == "vgpu" and self.gpus_per_vm > 1

    @property
    def no_p2p(self) -> bool:
        """A multi-GPU request whose GPUs never talk peer-to-peer: fractional or separately assigned vGPUs."""
        return self.gpus_per_vm > 1 and (self.fractional or self.separate_vgpus)

    def nvlink_device_group(self) -> str | None:
        """The vendor device group that keeps this request's vGPUs on one NVLink domain or Fabric Manager partition
        (``Nvidia:2@nvidia_h100xm-80c%NVLink``); None when no such group exists (one GPU, fractional or MIG)."""
        group = self.device_group
        if group is not None:
            return group.name if group.link and group.link.lower() == "nvlink" else None
        p = self.vgpu_profile
        if self.gpus_per_vm < 2 or p is None or not p.is_full_framebuffer:
            return None
        return f"Nvidia:{self.gpus_per_vm}@{p.name}%NVLink"

    @property
    def effective_interconnect(self) -> str:
        group = self.device_group
        if group is not None and group.link and group.link.lower() == "nvlink":
            return "nvlink"
        return self.interconnect

    @property
    def target_board(self) -> Board | None:
        catalog = load_catalog()
        if self.board:
            return catalog.boards.get(self.board)
        p = self.vgpu_profile
        return p.board if p is not None else None

    def validate(self) -> PlacementRequest:
        """Raise RequestError for the first problem found; return self so calls can chain."""
        if not isinstance(self.gpus_per_vm, int) or not 1 <= self.gpus_per_vm <= MAX_GPUS_PER_VM:
            raise RequestError("gpus_per_vm", f"must be between 1 and {MAX_GPUS_PER_VM}, got {self.gpus_per_vm!r}")
        if self.consumption not in CONSUMPTIONS:
            raise RequestError("consumption", f"must be one of {', '.join(CONSUMPTIONS)}")
        if not 1 <= self.vms <= MAX_VMS:
            raise RequestError("vms", f"must be between 1 and {MAX_VMS}, got {self.vms}")
        if self.interconnect not in INTERCONNECTS:
            raise RequestError("interconnect", f"must be one of {', '.join(INTERCONNECTS)}")
        if not 0 <= self.vcpus <= MAX_VCPUS:
            raise RequestError(
                "vcpus", f"must be between 0 and {MAX_VCPUS} (vSphere's maximum per VM), got {self.vcpus}"
            )
        if not 0 <= self.memory_mb <= MAX_MEMORY_MB:
            raise RequestError(
                "memory_mb",
                f"must be between 0 and {MAX_MEMORY_MB:,} MB (24 TB, vSphere's maximum per VM), got {self.memory_mb:,}",
            )
        if self.min_framebuffer_gb is not None and not 0 < self.min_framebuffer_gb <= MAX_FRAMEBUFFER_GB:
            raise RequestError("min_framebuffer_gb", f"must be between 1 and {MAX_FRAMEBUFFER_GB} GB when given")
        catalog = load_catalog()
        if self.board is not None and self.board not in catalog.boards:
            raise RequestError("board", f"unknown board {self.board!r} (known: {', '.join(sorted(catalog.boards))})")
        if self.hardware_label is not None:
            if self.consumption != "dynamic-passthrough":
                raise RequestError(
                    "hardware_label", "only a Dynamic DirectPath (dynamic-passthrough) device matches a hardware label"
                )
            if not isinstance(self.hardware_label, str) or len(self.hardware_label) > MAX_HARDWARE_LABEL:
                raise RequestError("hardware_label", f"must be a text of at most {MAX_HARDWARE_LABEL} characters")
        if self.whole_gpu:
            if self.profile:
                raise RequestError("profile", f"{self.consumption} takes whole GPUs, not a vGPU profile; use board")
            return self
        if not self.profile:
            raise RequestError("profile", f"{self.consumption} needs a vGPU profile")
        try:
            group = self.device_group
            profile = self.vgpu_profile
        except ProfileNameError as exc:
            raise RequestError("profile", str(exc)) from exc
        assert profile is not None
        if group is not None and group.count != self.gpus_per_vm:
            raise RequestError(
                "gpus_per_vm", f"device group {group.name} holds {group.count} GPUs, request asks {self.gpus_per_vm}"
            )
        if profile.board is None:
            raise RequestError("profile", f"board code {profile.board_code!r} of {profile.name} is not in the catalog")
        problem = series_problem(profile)
        if problem:
            raise RequestError("profile", problem)
        if profile.is_mig and self.consumption != "mig":
            raise RequestError("profile", f"{profile.name} is MIG-backed; use consumption 'mig'")
        if self.consumption == "mig" and not profile.is_mig:
            raise RequestError("profile", f"{profile.name} is time-sliced; {_mig_hint(profile)}")
        if self.board is not None and self.board != profile.board.key:
            raise RequestError("board", f"board {self.board} contradicts profile {profile.name} ({profile.board.key})")
        if self.min_framebuffer_gb is not None and profile.framebuffer_gb < self.min_framebuffer_gb:
            raise RequestError(
                "min_framebuffer_gb",
                f"profile {profile.name} has {profile.framebuffer_gb} GB, below the {self.min_framebuffer_gb} GB asked",
            )
        if self.consumption == "device-group" and not profile.is_full_framebuffer:
            full = f"{profile.name.rsplit('-', 1)[0]}-{profile.board.framebuffer_gb}{profile.series.lower()}"
            raise RequestError(
                "profile",
                f"a vendor device group holds full-framebuffer vGPUs joined by NVLink (such as "
                f"Nvidia:{self.gpus_per_vm}@{full}%NVLink); {profile.name} is fractional ({profile.framebuffer_gb} of "
                f"{profile.board.framebuffer_gb} GB): use consumption 'vgpu' for separate vGPUs",
            )
        if self.gpus_per_vm > 1 and self.effective_interconnect == "nvlink" and not profile.is_full_framebuffer:
            raise RequestError(
                "interconnect",
                f"NVLink P2P needs full-framebuffer vGPUs; {profile.name} is fractional "
                f"({profile.framebuffer_gb} of {profile.board.framebuffer_gb} GB)",
            )
        return self


def _mig_hint(profile: VgpuProfileName) -> str:
    """A MIG-backed type of the same board, spelled like the request (the same size where one exists)."""
    board = profile.board
    if board is None or board.mig is None:
        return f"{board.key if board else profile.board_code} has no MIG-backed vGPU types"
    choices = [p for p in board.mig.profiles if not p.media_extensions]
    same = [p for p in choices if p.memory_gb == profile.framebuffer_gb]
    example = (same or choices)[0]
    prefix = profile.name.split("_", 1)[0]
    return (
        f"MIG needs a MIG-backed type such as {prefix}_{profile.board_code}-{example.compute_slices}-"
        f"{example.memory_gb}c"
    )

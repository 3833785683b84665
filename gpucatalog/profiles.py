"""Parsing of vSphere vGPU type names (``grid_a100d-20c``, ``nvidia_h100xm-1-10c``) and device-group names."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpucatalog.catalog import Board, Catalog, MigProfile, load_catalog

# ASCII digits only: \d also matches digits of other scripts (which int() reads) and the like.
PROFILE_RE = re.compile(r"^(grid|nvidia)_([a-z0-9]+)-(?:([0-9])-)?([0-9]+)([a-z]+)$")
DEVICE_GROUP_RE = re.compile(r"^(?P<vendor>[A-Za-z]+):(?P<count>[0-9]+)@(?P<profile>[^%\s]+)(?:%(?P<link>\w+))?$")
SERIES = {"c": "C", "q": "Q", "b": "B", "a": "A"}
# NVIDIA's MIG-backed C-series types with media extensions (NVDEC/NVJPG/OFA) carry an "ME" suffix: A100D-1-10CME,
# H100XM-1-10CME, A30-1-6CME, A30-2-12CME; vSphere spells them grid_a100d-1-10cme. They map to the catalog's
# "+me" MIG profiles (1g.10gb+me), and NVIDIA publishes them for MIG-backed C-series types only.
MEDIA_SUFFIX = "me"
SERIES_WORDS = {"C": "C-series (compute)", "Q": "Q-series (workstation)", "B": "B-series (business)",
                "A": "A-series (app)"}  # fmt: skip


class ProfileNameError(ValueError):
    """A vGPU type name that does not follow NVIDIA's naming or contradicts the board catalog."""


@dataclass(frozen=True)
class VgpuProfileName:
    name: str
    board_code: str
    board: Board | None  # None when the board is not in the catalog (e.g. T4)
    framebuffer_gb: int
    series: str  # "C" compute, "Q" workstation, "B" business, "A" app
    mig_compute_slices: int | None  # None for time-sliced profiles
    mig_profile: MigProfile | None
    media_extensions: bool = False  # a "...cme" type: MIG-backed with media extensions (a "+me" MIG profile)

    @property
    def is_mig(self) -> bool:
        return self.mig_compute_slices is not None

    @property
    def is_full_framebuffer(self) -> bool:
        """A time-sliced profile holding the whole GPU: the only vGPU kind that keeps NVLink P2P."""
        return not self.is_mig and self.board is not None and self.framebuffer_gb == self.board.framebuffer_gb


@dataclass(frozen=True)
class DeviceGroupName:
    name: str
    vendor: str
    count: int
    profile: VgpuProfileName
    link: str | None


def parse_profile_name(name: str, *, catalog: Catalog | None = None) -> VgpuProfileName:
    """Parse a vSphere vGPU type name; raise ProfileNameError naming what is wrong."""
    if not isinstance(name, str) or not name.strip():
        raise ProfileNameError("profile name is empty")
    text = name.strip()
    m = PROFILE_RE.match(text.lower())
    if m is None:
        raise ProfileNameError(
            f"profile name {text!r} does not match '<grid|nvidia>_<board>-[<mig slices>-]<GB><series>', "
            "e.g. grid_a100d-20c or nvidia_h100xm-1-10c"
        )
    _, code, slices, gb, series = m.groups()
    media = series.endswith(MEDIA_SUFFIX) and series[: -len(MEDIA_SUFFIX)] in SERIES
    if media:
        series = series[: -len(MEDIA_SUFFIX)]
    if series not in SERIES:
        raise ProfileNameError(
            f"profile name {text!r}: unknown series {series!r} (expected one of c, q, b, a, or cme for a MIG-backed "
            "type with media extensions)"
        )
    if media and (series != "c" or slices is None):
        raise ProfileNameError(
            f"profile name {text!r}: media extensions (ME) exist only on MIG-backed C-series types, "
            "e.g. grid_a100d-1-10cme"
        )
    if len(gb) > 6:  # no board has a million GB, and int() refuses more than 4,300 digits
        raise ProfileNameError(f"profile name {text[:40]!r}: a framebuffer of {len(gb)} digits is out of range")
    framebuffer_gb = int(gb)
    if framebuffer_gb <= 0:
        raise ProfileNameError(f"profile name {text!r}: framebuffer must be positive")
    catalog = catalog or load_catalog()
    board = catalog.board_for_code(code)
    mig_slices = int(slices) if slices is not None else None
    mig_profile = None
    if board is not None:
        if framebuffer_gb > board.framebuffer_gb:
            raise ProfileNameError(
                f"profile name {text!r}: {framebuffer_gb} GB exceeds the {board.key} framebuffer "
                f"({board.framebuffer_gb} GB)"
            )
        if mig_slices is not None:
            if board.mig is None:
                raise ProfileNameError(f"profile name {text!r}: {board.key} does not support MIG")
            mig_profile = board.mig.profile(mig_slices, framebuffer_gb, media)
            if mig_profile is None:
                known = ", ".join(p.name for p in board.mig.profiles if p.media_extensions == media) or "none"
                what = f"{mig_slices}g.{framebuffer_gb}gb{'+me' if media else ''}"
                raise ProfileNameError(
                    f"profile name {text!r}: no MIG profile {what} on {board.key} "
                    f"(known{' with media extensions' if media else ''}: {known})"
                )
        elif series == "c" and board.timesliced and framebuffer_gb not in board.timesliced:
            sizes = ", ".join(f"{gb}C" for gb in sorted(board.timesliced))
            raise ProfileNameError(
                f"profile name {text!r}: {board.key} has no {framebuffer_gb}C time-sliced profile (known: {sizes})"
            )
    return VgpuProfileName(
        name=text.lower(),
        board_code=code,
        board=board,
        framebuffer_gb=framebuffer_gb,
        series=SERIES[series],
        mig_compute_slices=mig_slices,
        mig_profile=mig_profile,
        media_extensions=media,
    )


def parse_device_group_name(name: str, *, catalog: Catalog | None = None) -> DeviceGroupName:
    """Parse a vSphere device-group name such as ``Nvidia:2@grid_a100d-80c%NVLink``."""
    m = DEVICE_GROUP_RE.match(name.strip()) if isinstance(name, str) else None
    if m is None:
        raise ProfileNameError(
            f"device group name {name!r} does not match '<Vendor>:<count>@<profile>[%<link>]', "
            "e.g. Nvidia:2@grid_a100d-80c%NVLink"
        )
    if len(m["count"]) > 2 or not 1 <= int(m["count"]) <= 16:  # int() refuses more than 4,300 digits
        raise ProfileNameError(f"device group name {name[:40]!r}: count {m['count'][:12]} is outside 1..16")
    count = int(m["count"])
    return DeviceGroupName(
        name=name.strip(),
        vendor=m["vendor"],
        count=count,
        profile=parse_profile_name(m["profile"], catalog=catalog),
        link=m["link"],
    )


def series_problem(profile: VgpuProfileName) -> str | None:
    """Why the profile's board has no vGPU type of the profile's series (H100 has no Q types), naming what the
    board offers; None when the board runs the series or its series are not in the catalog."""
    board = profile.board
    if board is None or not board.vgpu_series or profile.series in board.vgpu_series:
        return None
    series = ", ".join(SERIES_WORDS.get(s, s) for s in board.vgpu_series)
    offers = f"{series}{' only' if len(board.vgpu_series) == 1 else ''}"
    kinds = []
    if "C" in board.vgpu_series and board.timesliced:
        sizes = ", ".join(f"{gb}C" for gb in sorted(board.timesliced))
        example = f"{profile.name.split('_', 1)[0]}_{profile.board_code}-{max(board.timesliced)}c"
        kinds.append(f"time-sliced {sizes} (e.g. {example})")
    if "C" in board.vgpu_series and board.mig is not None:
        kinds.append("MIG-backed " + ", ".join(
            f"{p.compute_slices}-{p.memory_gb}C" for p in board.mig.profiles if not p.media_extensions))  # fmt: skip
    if kinds:
        offers += ": " + " and ".join(kinds)
    what = SERIES_WORDS.get(profile.series, profile.series)
    return f"{board.key} has no {what} vGPU profiles, so {profile.name} does not exist; it offers {offers}"

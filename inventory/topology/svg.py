"""Server-side SVG drawing of one host's GPU fabric (in the spirit of NetBox's cable-trace SVGs).

Layout, top to bottom: one band per NUMA node (left to right by node id), root ports, PCIe switches,
GPUs in PCI bus order, then NVLink arcs or an NVSwitch bar, then a legend. Everything is placed from
sorted inputs, so the same fabric always gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from inventory.text import visible_text
from inventory.topology.model import HostFabric, HostHardware
from inventory.topology.pcie_tree import PciTree

GPU_W, GPU_H = 172, 68
BOX_H = 30
GAP, GROUP_GAP, BAND_GAP = 14, 22, 40
MARGIN = 24
Y_BAND, Y_ROOT, Y_SWITCH, Y_GPU = 48, 90, 146, 206
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"

COLOURS = {
    "band": "#f4f6f8",
    "band-stroke": "#c5ccd3",
    "bridge": "#e3e8ee",
    "gpu-free": "#ffffff",
    "gpu-used": "#ffe3b3",
    "gpu-reserved": "#fff8e8",  # drawn with a dashed amber border: held for a planned VM, not used yet
    "gpu-unavailable": "#e6e9ed",  # host in maintenance or disconnected, or a GPU mode plans cannot use
    "reserved-stroke": "#d08a00",
    "gpu-stroke": "#37474f",
    "pcie": "#78909c",
    "nvlink": "#76b900",
    "nvswitch": "#2e7d32",
    "switch-outline": "#546e7a",
    "pair-outline": "#76b900",
    "text": "#263238",
    "muted": "#607d8b",
}


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 12,
    anchor: str = "middle",
    weight: str = "normal",
    fill: str = COLOURS["text"],
) -> str:
    return (
        f"<text x='{_n(x)}' y='{_n(y)}' font-size='{size}' text-anchor='{anchor}' font-weight='{weight}' "
        f"fill='{fill}'>{escape(visible_text(text))}</text>"
    )


def _rect(box: _Box, *, fill: str, stroke: str, width: float = 1, rx: int = 4, dash: str | None = None) -> str:
    dash_attr = f" stroke-dasharray='{dash}'" if dash else ""
    return (
        f"<rect x='{_n(box.x)}' y='{_n(box.y)}' width='{_n(box.w)}' height='{_n(box.h)}' rx='{rx}' "
        f"fill='{fill}' stroke='{stroke}' stroke-width='{_n(width)}'{dash_attr}/>"
    )


def _line(x1: float, y1: float, x2: float, y2: float, *, stroke: str, width: float = 1) -> str:
    return (
        f"<line x1='{_n(x1)}' y1='{_n(y1)}' x2='{_n(x2)}' y2='{_n(y2)}' stroke='{stroke}' stroke-width='{_n(width)}'/>"
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _short_model(model: str) -> str:
    words = [w for w in model.replace("NVIDIA", "").split() if w]
    return " ".join(words) or model


def render_host_svg(
    fabric: HostFabric,
    hw: HostHardware,
    *,
    occupancy: dict[str, str] | None = None,
    reserved: dict[str, str] | None = None,
    unavailable: dict[str, str] | None = None,
    vcenter: str | None = None,
) -> str:
    """SVG (a complete ``<svg>`` document) of ``fabric``, titled with its host and ``vcenter`` (host names repeat
    across vCenters); ``occupancy`` maps GPU pci id -> VM name, ``reserved``
    GPU pci id -> the VM names of the reservations holding it (a GPU a VM uses is drawn as used), ``unavailable``
    GPU pci id -> why plans cannot use it (drawn so unless a VM uses or a reservation holds it)."""
    unavailable = {k.strip().lower(): v for k, v in (unavailable or {}).items()}
    occupancy = {k.strip().lower(): v for k, v in (occupancy or {}).items()}
    reserved = {k.strip().lower(): v for k, v in (reserved or {}).items()}
    tree = PciTree(tuple(hw.pci))
    graph = fabric.graph
    index = {g: i for i, g in enumerate(fabric.gpus)}
    models = {gpu.pci_id.strip().lower(): gpu.model for gpu in hw.gpus}
    switch_of: dict[str, str] = {}
    for domain in fabric.domains_of("pcie-switch"):
        for member in domain.members:
            switch_of[member] = domain.id

    def numa(g: str) -> int | None:
        return graph.nodes[g].get("numa") if g in graph else None

    def root(g: str) -> str | None:
        path = tree.path(g)
        return path[0] if path else None

    bands: dict[int | None, list[str]] = {}
    for g in fabric.gpus:
        bands.setdefault(numa(g), []).append(g)
    band_keys = sorted(bands, key=lambda k: (k is None, k if k is not None else 0))

    # Horizontal placement: GPUs left to right, grouped by band, root port and switch.
    gpu_box: dict[str, _Box] = {}
    band_span: dict[int | None, tuple[float, float]] = {}
    x = MARGIN
    for key in band_keys:
        members = bands[key]
        first_of_root: dict[str | None, int] = {}
        first_of_switch: dict[str | None, int] = {}
        for g in members:
            first_of_root.setdefault(root(g), index[g])
            first_of_switch.setdefault(switch_of.get(g), index[g])
        members.sort(key=lambda g: (first_of_root[root(g)], first_of_switch[switch_of.get(g)], index[g]))
        start = x
        x += GAP
        previous: tuple | None = None
        for g in members:
            group = (root(g), switch_of.get(g))
            if previous is not None and group != previous:
                x += GROUP_GAP
            previous = group
            gpu_box[g] = _Box(x, Y_GPU, GPU_W, GPU_H)
            x += GPU_W + GAP
        band_span[key] = (start, x)
        x += BAND_GAP

    nv_links = [link for link in fabric.links if link.kind == "NVLINK"]
    boards = fabric.domains_of("nvswitch-board")
    arc_depth = 0.0
    for link in nv_links:
        span = abs(gpu_box[link.a].cx - gpu_box[link.b].cx)
        arc_depth = max(arc_depth, min(40 + span * 0.12, 150))
    y_fabric = Y_GPU + GPU_H + 20
    y_bar = y_fabric + 30
    fabric_bottom = y_fabric + (arc_depth if nv_links else 0) + (60 if boards else 0)
    band_bottom = max(Y_GPU + GPU_H + 16, fabric_bottom + 10)
    y_legend = band_bottom + 30
    width = max(x - BAND_GAP + MARGIN, MARGIN + _legend_width() + MARGIN)
    height = y_legend + 30

    out: list[str] = []
    n = len(fabric.gpus)
    where = f" (vCenter {vcenter})" if vcenter else ""
    title = f"GPU fabric of {fabric.host}{where}: {n} GPU{'' if n == 1 else 's'}"
    out.append(
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {_n(width)} {_n(height)}' "
        f"width='{_n(width)}' height='{_n(height)}' role='img' {FONT}>"
    )
    out.append(f"<title>{escape(visible_text(title))}</title>")
    out.append(f"<desc>{escape(visible_text(_description(fabric, index, numa)))}</desc>")
    out.append(_text(MARGIN, 28, title, size=16, anchor="start", weight="bold"))

    for key in band_keys:
        left, right = band_span[key]
        box = _Box(left, Y_BAND - 8, right - left, band_bottom - Y_BAND + 8)
        out.append(_rect(box, fill=COLOURS["band"], stroke=COLOURS["band-stroke"], rx=8))
        socket = graph.nodes.get(f"numa:{key}", {}).get("socket") if key is not None else None
        label = "NUMA node unknown" if key is None else f"NUMA node {key}"
        if socket is not None:
            label += f" \u00b7 socket {socket}"
        out.append(_text(left + 10, Y_BAND + 10, label, anchor="start", weight="bold", size=13))

    # PCIe tree: root ports and switches centred over their GPUs.
    def centred(members: list[str], y: float, w: float) -> _Box:
        xs = [gpu_box[m].cx for m in members]
        cx = (min(xs) + max(xs)) / 2
        return _Box(cx - w / 2, y, w, BOX_H)

    roots: dict[str, list[str]] = {}
    for g in fabric.gpus:
        r = root(g)
        if r is not None:
            roots.setdefault(r, []).append(g)
    switches = {d.id: d for d in fabric.domains_of("pcie-switch")}
    switch_box = {sid: centred(list(d.members), Y_SWITCH, 190) for sid, d in switches.items()}
    for sid in sorted(switch_box, key=lambda s: index[switches[s].members[0]]):
        d = switches[sid]
        outline = switch_box[sid]
        members = [gpu_box[m] for m in d.members]
        left = min(outline.x, *(b.x for b in members)) - 8
        right = max(outline.x + outline.w, *(b.x + b.w for b in members)) + 8
        out.append(
            _rect(
                _Box(left, outline.y - 8, right - left, Y_GPU + GPU_H + 8 - outline.y + 8),
                fill="none",
                stroke=COLOURS["switch-outline"],
                dash="6 4",
                rx=10,
            )
        )
    for r in sorted(roots, key=lambda r: index[roots[r][0]]):
        box = centred(roots[r], Y_ROOT, 190)
        out.append(_rect(box, fill=COLOURS["bridge"], stroke=COLOURS["pcie"]))
        out.append(_text(box.cx, box.y + 19, f"root port {r}", size=11))
        children: set[str] = set()
        for g in roots[r]:
            children.add(switch_of.get(g, g))
        for child in sorted(children, key=lambda c: switch_box[c].cx if c in switch_box else gpu_box[c].cx):
            target = switch_box[child] if child in switch_box else gpu_box[child]
            out.append(_line(box.cx, box.bottom, target.cx, target.y, stroke=COLOURS["pcie"]))
    for sid in sorted(switch_box, key=lambda s: index[switches[s].members[0]]):
        box = switch_box[sid]
        out.append(_rect(box, fill=COLOURS["bridge"], stroke=COLOURS["pcie"]))
        out.append(
            _text(box.cx, box.y + 19, f"PCIe switch {tree.common_bridge(switches[sid].members) or '?'}", size=11)
        )
        for m in switches[sid].members:
            out.append(_line(box.cx, box.bottom, gpu_box[m].cx, Y_GPU, stroke=COLOURS["pcie"]))

    # NVLink pairs whose GPUs sit side by side get an outline; every NVLink gets an arc below the GPUs.
    slots = sorted(fabric.gpus, key=lambda g: gpu_box[g].x)
    for domain in fabric.domains_of("nvlink-pair") + fabric.domains_of("nvlink-domain"):
        positions = sorted(slots.index(m) for m in domain.members)
        if positions[-1] - positions[0] == len(positions) - 1:
            boxes = [gpu_box[m] for m in domain.members]
            left, right = min(b.x for b in boxes) - 4, max(b.x + b.w for b in boxes) + 4
            out.append(
                _rect(
                    _Box(left, Y_GPU - 4, right - left, GPU_H + 8),
                    fill="none",
                    stroke=COLOURS["pair-outline"],
                    dash="4 3",
                    rx=8,
                    width=1.5,
                )
            )
    for link in sorted(nv_links, key=lambda link: (index[link.a], index[link.b])):
        a, b = sorted((gpu_box[link.a], gpu_box[link.b]), key=lambda box: box.x)
        x1, x2 = a.cx + 18, b.cx - 18
        depth = min(40 + abs(x2 - x1) * 0.12, 150)
        y0 = a.bottom
        mid = (x1 + x2) / 2
        out.append(
            f"<path d='M {_n(x1)} {_n(y0)} Q {_n(mid)} {_n(y0 + 2 * depth)} {_n(x2)} {_n(y0)}' fill='none' "
            f"stroke='{COLOURS['nvlink']}' stroke-width='4' stroke-linecap='round'>"
            f"<title>{escape(f'GPU{index[link.a]}-GPU{index[link.b]}: NV{link.nvlinks}, {link.gbps:g} GB/s')}"
            f"</title></path>"
        )
        out.append(
            _text(
                mid,
                y0 + depth + 16,
                f"NV{link.nvlinks} \u00b7 {link.gbps:g} GB/s",
                size=11,
                weight="bold",
                fill=COLOURS["nvswitch"],
            )
        )

    for board in boards:
        boxes = [gpu_box[m] for m in board.members]
        left, right = min(b.cx for b in boxes) - 30, max(b.cx for b in boxes) + 30
        members = set(board.members)
        gbps = min(
            (x.gbps for x in fabric.links if x.kind == "NVSWITCH" and x.a in members and x.b in members), default=0.0
        )
        for box in boxes:
            out.append(_line(box.cx, box.bottom, box.cx, y_bar, stroke=COLOURS["nvswitch"], width=4))
        out.append(_rect(_Box(left, y_bar, right - left, 22), fill=COLOURS["nvswitch"], stroke=COLOURS["nvswitch"]))
        out.append(
            _text(
                (left + right) / 2,
                y_bar + 16,
                f"NVSwitch \u00b7 {len(boxes)} GPUs all-to-all \u00b7 {gbps:g} GB/s per GPU, per direction",
                size=12,
                weight="bold",
                fill="#ffffff",
            )
        )

    for g in fabric.gpus:
        box = gpu_box[g]
        vm, held = occupancy.get(g), reserved.get(g)
        off = None if vm or held else unavailable.get(g)
        model = _short_model(models.get(g, graph.nodes[g].get("model", "")) if g in graph else models.get(g, ""))
        state = f", used by {vm}" if vm else "" if held else f", unavailable: {off}" if off is not None else ", free"
        tooltip = f"GPU{index[g]} {g} {model}" + state
        tooltip += f", reserved for {held}" if held else ""
        out.append(f"<g><title>{escape(visible_text(tooltip))}</title>")
        if vm:
            out.append(_rect(box, fill=COLOURS["gpu-used"], stroke=COLOURS["gpu-stroke"], width=1.5, rx=6))
        elif held:
            out.append(
                _rect(box, fill=COLOURS["gpu-reserved"], stroke=COLOURS["reserved-stroke"], width=2, rx=6, dash="6 3")
            )
        elif off is not None:
            out.append(_rect(box, fill=COLOURS["gpu-unavailable"], stroke=COLOURS["muted"], width=1.5, rx=6))
        else:
            out.append(_rect(box, fill=COLOURS["gpu-free"], stroke=COLOURS["gpu-stroke"], width=1.5, rx=6))
        out.append(_text(box.cx, box.y + 19, _clip(f"GPU{index[g]} \u00b7 {model}", 21), weight="bold", size=12))
        out.append(_text(box.cx, box.y + 37, g, size=12, fill=COLOURS["muted"]))
        label = _clip(f"VM {vm}", 21) if vm else _clip(f"reserved: {held}", 21) if held else "free"
        if off is not None:
            label = "unavailable"
        out.append(_text(box.cx, box.y + 56, label, size=12, weight="bold" if vm or held else "normal"))
        out.append("</g>")

    out.extend(_legend(MARGIN, y_legend))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _description(fabric: HostFabric, index: dict[str, int], numa) -> str:
    """What the drawing shows, in words (the SVG is one image to a screen reader): which GPUs NVLink or an
    NVSwitch joins, which share a PCIe switch, and on which NUMA node each sits."""

    def names(members) -> str:
        return ", ".join(f"GPU{i}" for i in sorted(index[m] for m in members))

    parts = []
    nv_links = sorted(
        (link for link in fabric.links if link.kind == "NVLINK"), key=lambda link: (index[link.a], index[link.b])
    )
    if nv_links:
        pairs = [
            f"GPU{min(index[x.a], index[x.b])} and GPU{max(index[x.a], index[x.b])} (NV{x.nvlinks}, {x.gbps:g} GB/s)"
            for x in nv_links
        ]
        parts.append("NVLink: " + ", ".join(pairs))
    for board in fabric.domains_of("nvswitch-board"):
        members = set(board.members)
        gbps = min(
            (x.gbps for x in fabric.links if x.kind == "NVSWITCH" and x.a in members and x.b in members), default=0.0
        )
        parts.append(f"NVSwitch: {names(board.members)} all-to-all ({gbps:g} GB/s per GPU, per direction)")
    if not parts:
        parts.append("No NVLink between these GPUs")
    for domain in sorted(fabric.domains_of("pcie-switch"), key=lambda d: min(index[m] for m in d.members)):
        parts.append(f"One PCIe switch: {names(domain.members)}")
    nodes: dict[int | None, list[str]] = {}
    for g in fabric.gpus:
        nodes.setdefault(numa(g), []).append(g)
    for node in sorted(nodes, key=lambda k: (k is None, k if k is not None else 0)):
        where = "NUMA node unknown" if node is None else f"NUMA node {node}"
        parts.append(f"{where}: {names(nodes[node])}")
    kinds = ", ".join(sorted({link.kind for link in fabric.links})) or "none"
    parts.append(f"Link classes present: {kinds}")
    return ". ".join(parts) + "."


def _swatch(kind: str, x: float, y: float) -> str:
    if kind == "nvlink":
        return _line(x, y, x + 26, y, stroke=COLOURS["nvlink"], width=4)
    if kind == "pcie":
        return _line(x, y, x + 26, y, stroke=COLOURS["pcie"])
    if kind == "nvswitch":
        return _rect(_Box(x, y - 5, 26, 10), fill=COLOURS["nvswitch"], stroke=COLOURS["nvswitch"])
    if kind == "switch-outline":
        return _rect(_Box(x, y - 8, 26, 16), fill="none", stroke=COLOURS["switch-outline"], dash="6 4")
    if kind == "pair-outline":
        return _rect(_Box(x, y - 8, 26, 16), fill="none", stroke=COLOURS["pair-outline"], dash="4 3")
    if kind == "gpu-reserved":
        return _rect(
            _Box(x, y - 8, 26, 16), fill=COLOURS["gpu-reserved"], stroke=COLOURS["reserved-stroke"], width=2, dash="6 3"
        )
    return _rect(_Box(x, y - 8, 26, 16), fill=COLOURS[kind], stroke=COLOURS["gpu-stroke"])


LEGEND = (
    ("gpu-free", "free GPU"),
    ("gpu-used", "GPU used by a VM"),
    ("gpu-reserved", "reserved GPU"),
    ("gpu-unavailable", "unavailable GPU"),
    ("nvlink", "NVLink (NV#, GB/s per direction)"),
    ("nvswitch", "NVSwitch"),
    ("pcie", "PCIe"),
    ("switch-outline", "PCIe switch"),
    ("pair-outline", "NVLink pair"),
)


def _legend_item_width(label: str) -> float:
    return 32 + len(label) * 6.5 + 18


def _legend_width() -> float:
    return 70 + sum(_legend_item_width(label) for _, label in LEGEND)


def _legend(x: float, y: float) -> list[str]:
    out = [_text(x, y + 4, "Legend", anchor="start", weight="bold")]
    x += 70
    for kind, label in LEGEND:
        out.append(_swatch(kind, x, y))
        out.append(_text(x + 32, y + 4, label, anchor="start", size=11))
        x += _legend_item_width(label)
    return out

"""Server-side SVG charts of a what-if report (no JavaScript charting): histograms with the percentiles marked,
per-profile placeable capacity bars, and per-GPU memory maps in the spirit of Denneman's silo visualizer.

Every text is escaped; the same report always gives the same bytes.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from placement.engine.simulate_model import plural

FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
COLOURS = {
    "bar": "#5c8fd6",
    "axis": "#607d8b",
    "text": "#263238",
    "muted": "#607d8b",
    "grid": "#e3e8ee",
    "free": "#ffffff",
    "siloed": "#f4b4a4",
    "stroke": "#37474f",
    "id": "#90a4ae",
    "marks": {"p50": "#2e7d32", "p90": "#f9a825", "p95": "#ef6c00", "p99": "#c62828"},
}
VM_COLOURS = ("#9cc3e6", "#b5d99c", "#f2c28c", "#c9b3e6", "#f0a8c0", "#a8dcd9", "#e6d69c", "#c0c8d0")


def _text(
    x: float,
    y: float,
    s: str,
    *,
    size: int = 11,
    anchor: str = "start",
    fill: str | None = None,
    weight: str = "normal",
) -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' {FONT} font-size='{size}' text-anchor='{anchor}' "
        f"font-weight='{weight}' fill='{fill or COLOURS['text']}'>{escape(str(s))}</text>"
    )


def _svg(width: int, height: int, body: list[str], label: str, css_class: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' class='{css_class}' role='img' aria-label='{escape(label)}' "
        f"width='{width}' height='{height}' viewBox='0 0 {width} {height}'>{''.join(body)}</svg>"
    )


def histogram(distribution: list, stats: dict, *, title: str, unit: str = "", width: int = 560) -> str:
    """Bars of how many runs ended at each value, with p50/p90/p95/p99 marked as vertical lines."""
    height, left, right, top, bottom = 220, 64, 16, 30, 42
    points = sorted((int(v), int(n)) for v, n in distribution)
    lo = min([v for v, _ in points] + [0])
    hi = max([v for v, _ in points] + [lo + 1])
    span = hi - lo + 1
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([n for _, n in points] + [1])
    bar_w = plot_w / span

    def x_of(v: float) -> float:
        return left + (v - lo) * bar_w

    body = [_text(left, 18, title, size=13, weight="bold")]
    body.append(
        f"<line x1='{left}' y1='{top + plot_h}' x2='{left + plot_w}' y2='{top + plot_h}' stroke='{COLOURS['axis']}'/>"
    )
    for v, n in points:
        h = plot_h * n / peak
        body.append(
            f"<rect class='hist-bar' x='{x_of(v) + 0.5:.1f}' y='{top + plot_h - h:.1f}' "
            f"width='{max(bar_w - 1, 1):.1f}' height='{h:.1f}' fill='{COLOURS['bar']}'>"
            f"<title>{escape(f'{v}{unit}: ' + plural(n, 'run'))}</title></rect>"
        )
    step = max(1, span // 8)
    for v in range(lo, hi + 1, step):
        body.append(
            _text(x_of(v) + bar_w / 2, top + plot_h + 14, f"{v}", size=10, anchor="middle", fill=COLOURS["muted"])
        )
    body.append(_text(left - 6, top + 8, plural(peak, "run"), size=10, anchor="end", fill=COLOURS["muted"]))
    body.append(_text(left - 6, top + plot_h, "0", size=10, anchor="end", fill=COLOURS["muted"]))
    legend_x = left
    for i, name in enumerate(("p50", "p90", "p95", "p99")):
        v = stats.get(name, 0)
        x = x_of(v) + bar_w / 2
        colour = COLOURS["marks"][name]
        body.append(
            f"<line class='mark mark-{name}' x1='{x:.1f}' y1='{top - 2}' x2='{x:.1f}' y2='{top + plot_h}' "
            f"stroke='{colour}' stroke-width='2' stroke-dasharray='{2 + i} 2'/>"
        )
        body.append(_text(legend_x, height - 8, f"{name} {v}{unit}", size=11, fill=colour, weight="bold"))
        legend_x += 110
    body.append(_text(width - right, height - 8, f"max {stats.get('max', 0)}{unit}", size=11, anchor="end"))
    return _svg(width, height, body, title, "chart histogram")


def placeable_bars(placeable: dict, *, title: str = "Placeable capacity per profile (median)", width: int = 560) -> str:
    """One horizontal bar per profile: how many more VMs of it still fit at the end."""
    items = list(placeable.items())
    row, left, top = 24, 90, 30
    height = top + row * max(len(items), 1) + 12
    peak = max([int(v) for _, v in items] + [1])
    plot_w = width - left - 60
    body = [_text(8, 18, title, size=13, weight="bold")]
    for i, (name, value) in enumerate(items):
        y = top + i * row
        w = plot_w * int(value) / peak
        body.append(_text(left - 8, y + 15, name, anchor="end"))
        body.append(
            f"<rect class='hist-bar placeable' x='{left}' y='{y + 3}' width='{w:.1f}' height='{row - 8}' "
            f"fill='{COLOURS['bar']}'><title>{escape(f'{name}: {value} more')}</title></rect>"
        )
        body.append(_text(left + w + 6, y + 15, f"{value}"))
    return _svg(width, height, body, title, "chart placeable")


MAX_MAP_GPUS = 32


def memory_maps(layout: list[dict], *, title: str, width: int = 760, limit: int = MAX_MAP_GPUS) -> str:
    """Per GPU, its framebuffer from 0 GB to the end: each VM where it sits (placement ID or MIG slot; a
    passthrough VM by its name and GPU count), free gaps in white, the GPU's siloed (and, same size, locked) GB in
    its label, and ticks at the placement IDs of the offered sizes. Past ``limit`` GPUs (a stored cluster of 100
    hosts drew 800 rows, 2 MB of page) only the most siloed are drawn, in their order, and the title says so."""
    gpus = [(h["host"], g) for h in layout for g in h["gpus"]]
    if len(gpus) > limit:
        worst = sorted(range(len(gpus)), key=lambda i: (-gpus[i][1]["siloed_gb"], -gpus[i][1]["free_gb"], i))[:limit]
        title = f"{title} · the {limit} most siloed of {len(gpus)} GPUs"
        gpus = [gpus[i] for i in sorted(worst)]
    row, left, top = 44, 190, 30
    height = top + row * max(len(gpus), 1) + 24
    plot_w = width - left - 16
    body = [_text(8, 18, title, size=13, weight="bold")]
    colour_of: dict[str, str] = {}
    for i, (host, g) in enumerate(gpus):
        y = top + i * row
        cap = max(int(g["capacity_gb"]), 1)
        scale = plot_w / cap
        label = f"{host} #{g['index']}"
        body.append(_text(left - 8, y + 14, label, anchor="end", size=10))
        silo = f"{g['free_gb']} GB free, {g['siloed_gb']} siloed"
        gpu_tip = silo
        if g.get("locked_gb"):  # same size: free memory only the lock's profile can still use
            silo += f", {g['locked_gb']} locked"
            gpu_tip = f"{silo} to {g.get('lock') or 'its profile'}"
        body.append(
            _text(
                left - 8,
                y + 27,
                silo,
                anchor="end",
                size=10,
                fill=COLOURS["siloed"] if g["siloed_gb"] else COLOURS["muted"],
            )
        )
        fill = COLOURS["siloed"] if g["siloed_gb"] and g["free_gb"] == g["siloed_gb"] else COLOURS["free"]
        body.append(
            f"<rect class='gpu' x='{left}' y='{y + 4}' width='{plot_w}' height='{row - 14}' fill='{fill}' "
            f"stroke='{COLOURS['stroke']}'><title>{escape(label + ': ' + gpu_tip)}</title></rect>"
        )
        for sizes, ids in sorted((g.get("placement_ids") or {}).items(), key=lambda kv: int(kv[0])):
            for s in ids:
                x = left + int(s) * scale
                body.append(
                    f"<line class='pid' x1='{x:.1f}' y1='{y + row - 10}' x2='{x:.1f}' y2='{y + row - 6}' "
                    f"stroke='{COLOURS['id']}'><title>{escape(f'{sizes} GB placement ID {s}')}</title></line>"
                )
        for vm in g["vms"]:
            x = left + int(vm["start"]) * scale
            w = int(vm["size"]) * scale
            if g.get("mode") == "passthrough":  # a whole GPU: its VM names it (the GPUs of one VM share a colour)
                name = str(vm["vm"])
                label = f"{name} ({vm['gpus']}-GPU)" if vm.get("gpus") else name
                tip = f"{label} passthrough VM: the whole GPU ({vm['size']} GB)"
                short = label
            else:
                name = str(vm.get("profile") or "")
                where = f"slot {vm['slot']}" if "slot" in vm else f"at {vm['start']} GB"
                tip = f"{vm['vm']}: {name} {vm['size']} GB {where}"
                label = f"{name}@{vm['start']}" if w > 60 else name
                short = name
            colour = colour_of.setdefault(name, VM_COLOURS[len(colour_of) % len(VM_COLOURS)])
            body.append(
                f"<rect class='vm' x='{x:.1f}' y='{y + 4}' width='{w:.1f}' height='{row - 14}' fill='{colour}' "
                f"stroke='{COLOURS['stroke']}'><title>{escape(tip)}</title></rect>"
            )
            if w > 26:
                body.append(_text(x + w / 2, y + 20, label if w > 60 else short, size=9, anchor="middle"))
    axis_y = top + row * max(len(gpus), 1) + 12
    body.append(_text(left, axis_y, "0 GB", size=10, fill=COLOURS["muted"]))
    if gpus:
        body.append(
            _text(
                left + plot_w, axis_y, f"{gpus[0][1]['capacity_gb']} GB", size=10, anchor="end", fill=COLOURS["muted"]
            )
        )
    return _svg(width, height, body, title, "chart memory-map")

"""Parsers for text captured with ``nvidia-smi``: the ``topo -m`` matrix and ``--query-gpu`` CSV.

The matrix parser is liberal about layout (tabs or spaces, prompts, comments, NIC rows and columns,
legends, old labels) and strict about content: anything it cannot read with certainty is either a
``SmiParseError`` naming the line or a warning in the result, never a silent guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpucatalog.limits import (
    MAX_GPUS_PER_VM,
    MAX_SEARCH_STATES,
    refused_sizes,
    swappable_classes,
    tree_like,
    twin_classes,
)
from inventory.topology.bandwidth import link_gbps

LABEL_KINDS = {"PIX": "PIX", "PXB": "PXB", "PHB": "PHB", "NODE": "NODE", "SYS": "SYS", "SOC": "SYS"}
# Best first; NVLINK is ranked by its link count before this table is consulted.
KIND_RANK = {"NVLINK": 0, "PIX": 1, "PXB": 2, "PHB": 3, "NODE": 4, "SYS": 5}
INFO_COLUMNS = {("CPU", "AFFINITY"): "CPU Affinity", ("NUMA", "AFFINITY"): "NUMA Affinity"}
GPU_NUMA_ID = ("GPU", "NUMA", "ID")

# Numbers are ASCII digits of bounded length: str.isdigit() and \d also accept superscripts and other
# scripts, which int() refuses or reads, and int() refuses more than 4,300 digits.
_NUMBER = re.compile(r"[0-9]{1,9}")
_GPU_NAME = re.compile(r"^GPU([0-9]{1,9})$")
_NV_LABEL = re.compile(r"^NV([0-9]{1,9})$")
_NIC_LEGEND_ENTRY = re.compile(r"^\s*(\S+)\s*:\s*(\S+)\s*$")
_PREAMBLE = re.compile(r"^\s*(?:[#$>]|```|GPU\s+Topology\s*:)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class SmiParseError(ValueError):
    """Unreadable ``nvidia-smi`` text; ``line`` is the 1-based line at fault, None for the whole text."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


@dataclass(frozen=True)
class SmiGpu:
    index: int
    numa_node: int | None
    cpu_affinity: str | None
    gpu_numa_id: int | None


@dataclass(frozen=True)
class SmiLink:
    a: int  # GPU index, a < b
    b: int
    label: str  # as printed: "NV12", "PIX", "SOC"
    kind: str  # NVLINK, PIX, PXB, PHB, NODE, SYS
    nvlinks: int
    gbps: float


@dataclass(frozen=True)
class SmiTopology:
    gpus: tuple[SmiGpu, ...]
    links: tuple[SmiLink, ...]
    nics: tuple[str, ...]
    warnings: tuple[str, ...]
    # NUMA nodes were not printed (no NUMA Affinity column) but derived: their numbers are not the host's
    numa_derived: bool = False

    def link(self, a: int, b: int) -> SmiLink | None:
        a, b = min(a, b), max(a, b)
        return next((link for link in self.links if link.a == a and link.b == b), None)

    def to_dict(self) -> dict:
        return {
            "gpus": [
                {
                    "index": g.index,
                    "numa_node": g.numa_node,
                    "cpu_affinity": g.cpu_affinity,
                    "gpu_numa_id": g.gpu_numa_id,
                }
                for g in self.gpus
            ],
            "links": [
                {"a": x.a, "b": x.b, "label": x.label, "kind": x.kind, "gbps": x.gbps, "nvlinks": x.nvlinks}
                for x in self.links
            ],
            "warnings": list(self.warnings),
            "nics": list(self.nics),
        }


@dataclass(frozen=True)
class SmiGpuIdentity:
    index: int
    pci_bus_id: str  # lowercase SBDF as vSphere prints it: 0000:3b:00.0
    module_id: int | None


@dataclass(frozen=True)
class _Cell:
    kind: str | None  # None: not a link label
    nvlinks: int
    label: str
    line: int


@dataclass(frozen=True)
class _Header:
    line: int
    matrix: tuple[str, ...]  # GPU and NIC column names, in order
    info: tuple[str, ...]  # "CPU Affinity", "NUMA Affinity", "GPU NUMA ID"


def _check_text(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        if b"\x00" in text:
            raise SmiParseError("input contains NUL bytes: binary data, not nvidia-smi text")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SmiParseError(f"input is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(text, str):
        raise SmiParseError(f"input must be text, got {type(text).__name__}")
    if not text.strip():
        raise SmiParseError("input is empty")
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if "\x00" in line:
            raise SmiParseError("contains NUL bytes: binary data, not nvidia-smi text", number)
        bad = _CONTROL.search(line)
        if bad:
            raise SmiParseError(f"contains control character {bad.group()!r}: not nvidia-smi text", number)
        if "\ufffd" in line:
            raise SmiParseError("contains undecodable bytes (U+FFFD): not nvidia-smi text", number)
    return lines


def _parse_header(tokens: list[str], number: int) -> _Header:
    matrix: list[str] = []
    info: list[str] = []
    upper = [t.upper() for t in tokens]
    i = 0
    while i < len(tokens):
        if tuple(upper[i : i + 3]) == GPU_NUMA_ID:
            info.append("GPU NUMA ID")
            i += 3
        elif tuple(upper[i : i + 2]) in INFO_COLUMNS:
            info.append(INFO_COLUMNS[tuple(upper[i : i + 2])])  # type: ignore[index]
            i += 2
        elif info:
            raise SmiParseError(f"header column {tokens[i]!r} after the affinity columns is unknown", number)
        else:
            matrix.append(upper[i] if _GPU_NAME.match(upper[i]) else tokens[i])
            i += 1
    seen: set[str] = set()
    for name in matrix:
        if name in seen:
            raise SmiParseError(f"header names column {name} twice", number)
        seen.add(name)
    return _Header(number, tuple(matrix), tuple(info))


def _parse_cell(raw: str, number: int) -> _Cell:
    label = raw.upper()
    if label in LABEL_KINDS:
        return _Cell(LABEL_KINDS[label], 0, raw, number)
    m = _NV_LABEL.match(label)
    if m and int(m.group(1)) > 0:
        return _Cell("NVLINK", int(m.group(1)), raw, number)
    return _Cell(None, 0, raw, number)


def _worse(x: _Cell, y: _Cell) -> _Cell:
    def badness(c: _Cell) -> tuple[int, int]:
        return (KIND_RANK[c.kind], -c.nvlinks)  # type: ignore[index]

    return x if badness(x) >= badness(y) else y


def _optional_int(raw: str, what: str, gpu: str, number: int, warnings: list[str]) -> int | None:
    if raw.upper() in ("N/A", "[N/A]", "-"):
        return None
    if _NUMBER.fullmatch(raw):
        return int(raw)
    warnings.append(f"line {number}: {gpu} {what} {raw!r} is not a single node number; left unknown")
    return None


def parse_smi_topology(
    text: str,
    *,
    nvlink_generation: int | None = None,
    pcie_gen: int | None = None,
    inter_socket_gbps: float | None = None,
) -> SmiTopology:
    """Parse the output of ``nvidia-smi topo -m``; raise SmiParseError naming the line on bad input.

    Pairs come from the upper triangle (row i, column j > i) and are cross-checked with the lower one;
    when rows are missing (a truncated capture) the triangle that is present is used and a warning
    says so. Labels that disagree keep the worse of the two, with a warning.
    """
    lines = _check_text(text)
    warnings: list[str] = []

    header: _Header | None = None
    rows: dict[str, tuple[int, list[str]]] = {}
    row_order: list[str] = []
    nic_legend: dict[str, str] = {}
    in_legend = False
    last_content = max(n for n, line in enumerate(lines, 1) if line.strip())

    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            continue
        if in_legend:
            m = _NIC_LEGEND_ENTRY.match(line)
            if m and header is not None and m.group(1) in header.matrix:
                nic_legend[m.group(1)] = m.group(2)
            continue
        # a legend pasted without its "Legend:" title starts with "X    = Self"
        if stripped.upper().startswith(("LEGEND", "NIC LEGEND")) or (header is not None and " = " in stripped):
            in_legend = True
            continue
        if _PREAMBLE.match(line):
            continue
        tokens = stripped.split()
        if header is None:
            if tokens[0].upper() == "GPU0" and (len(tokens) == 1 or tokens[1].upper() != "X"):
                header = _parse_header(tokens, number)
            continue
        name = tokens[0].upper() if _GPU_NAME.match(tokens[0].upper()) else tokens[0]
        if name not in header.matrix:
            raise SmiParseError(f"row {tokens[0]!r} matches no column of the header on line {header.line}", number)
        if name in rows:
            raise SmiParseError(f"row {name} appears twice (first on line {rows[name][0]})", number)
        expected = 1 + len(header.matrix) + len(header.info)
        allowed = {expected} if _GPU_NAME.match(name) else {expected, 1 + len(header.matrix)}
        if len(tokens) not in allowed:
            if number == last_content and len(tokens) < expected:
                warnings.append(
                    f"line {number}: row {name} is cut off ({len(tokens)} of {expected} cells); "
                    "ignored as a truncated capture"
                )
                continue
            raise SmiParseError(
                f"row {name} has {len(tokens)} cells, expected {expected} "
                f"(the header on line {header.line} has {expected - 1} columns)",
                number,
            )
        rows[name] = (number, tokens[1:])
        row_order.append(name)

    if header is None:
        raise SmiParseError(
            "no GPU header line found (expected a line of column names starting with GPU0, "
            "as printed by `nvidia-smi topo -m`)"
        )
    gpu_columns = [(c, int(m.group(1))) for c in header.matrix if (m := _GPU_NAME.match(c))]
    if not gpu_columns:
        raise SmiParseError("header names no GPU column", header.line)
    gpu_rows = [n for n in row_order if _GPU_NAME.match(n)]
    if not gpu_rows:
        raise SmiParseError("the capture ends after the header: no GPU rows", header.line)
    expected_order = [c for c, _ in gpu_columns if c in rows]
    if gpu_rows != expected_order:
        warnings.append(
            f"GPU rows are out of order ({', '.join(gpu_rows)}; header order is "
            f"{', '.join(expected_order)}); nvidia-smi prints them in PCI bus order, so check the paste"
        )
    missing = [c for c, _ in gpu_columns if c not in rows]
    if missing:
        warnings.append(
            f"rows {', '.join(missing)} are missing (partial capture); "
            "their links are taken from the rows that are present"
        )

    column_index = {name: i for i, name in enumerate(header.matrix)}
    gpus = [_gpu_from_row(c, index, rows.get(c), header, warnings) for c, index in gpu_columns]
    links, readable = _pairs(
        gpu_columns,
        rows,
        column_index,
        warnings,
        nvlink_generation=nvlink_generation,
        pcie_gen=pcie_gen,
        inter_socket_gbps=inter_socket_gbps,
    )
    if len(gpu_columns) > 1 and not links:
        if readable == 0 and not missing:
            raise SmiParseError("no GPU-to-GPU cell holds a link label (X, NV#, PIX, PXB, PHB, NODE, SYS)", header.line)
        raise SmiParseError("no GPU pair can be determined from the rows present", header.line)
    numa_derived = "NUMA Affinity" not in header.info
    if numa_derived:
        gpus = _derive_numa(gpus, links, warnings)
    else:
        warnings.extend(_sys_within_numa_node(gpus, links))
    unknown = [f"GPU{g.index}" for g in gpus if g.numa_node is None]
    if unknown:
        warnings.append(
            f"NUMA node unknown for {', '.join(unknown)}: sets with these GPUs rank after sets whose NUMA "
            "node is known; capture with a recent nvidia-smi (NUMA Affinity column) to fix"
        )
    too_many = _too_complex(gpus, links)
    if too_many:
        warnings.append(too_many)
    nics = tuple(nic_legend.get(c, c) for c in header.matrix if not _GPU_NAME.match(c))
    return SmiTopology(tuple(gpus), tuple(links), nics, tuple(warnings), numa_derived)


def _too_complex(gpus: list[SmiGpu], links: list[SmiLink]) -> str | None:
    """Which VM sizes plans refuse on this capture's host (``gpucatalog.limits``: GPUs with the same link to every
    other GPU and the same NUMA node are interchangeable; classes that swap as wholes, such as the bridged pairs on
    one socket, count once per multiset of counts), or None."""
    n = len(gpus)
    if 1 << n <= MAX_SEARCH_STATES:
        return None  # few enough sets and states whatever the wiring
    index = {g.index: i for i, g in enumerate(gpus)}
    pair: dict[tuple[int, int], SmiLink] = {}
    for x in links:
        if x.a in index and x.b in index:
            pair[index[x.a], index[x.b]] = pair[index[x.b], index[x.a]] = x
    classes = twin_classes(n, lambda i, j: _key(pair.get((i, j))), lambda i: gpus[i].numa_node)
    blocks = swappable_classes(classes, lambda i, j: _key(pair.get((i, j))), lambda i: gpus[i].numa_node)
    tree = tree_like(
        n,
        lambda i, j: pair[i, j].gbps if (i, j) in pair else 0.0,
        lambda i, j: KIND_RANK[pair[i, j].kind] if (i, j) in pair else len(KIND_RANK),
        lambda i, j: (i, j) in pair and pair[i, j].kind == "NVLINK",
    )
    block_sizes = [(len(b), len(classes[b[0]])) for b in blocks]
    refused = refused_sizes([len(c) for c in classes], tree, MAX_GPUS_PER_VM, block_sizes)
    if not refused:
        return None
    sizes = f"{refused[0]}" if len(refused) == 1 else f"{refused[0]} to {refused[-1]}"
    return f"the capture shows {n} GPUs; plans refuse VMs of {sizes} GPUs on such a host (too many distinct GPU sets)"


def _key(link: SmiLink | None) -> tuple | None:
    return None if link is None else (link.kind, link.nvlinks, link.gbps)


def _sys_within_numa_node(gpus: list[SmiGpu], links: list[SmiLink]) -> list[str]:
    """SYS says the path crosses the link between CPU sockets, so its two GPUs cannot share one NUMA node: a capture
    saying both is edited, or taken on a VM whose virtual topology hides the sockets; one warning names the pairs."""
    node = {g.index: g.numa_node for g in gpus}
    pairs = [
        f"GPU{x.a}/GPU{x.b}"
        for x in links
        if x.kind == "SYS" and node.get(x.a) is not None and node.get(x.a) == node.get(x.b)
    ]
    if not pairs:
        return []
    shown = ", ".join(pairs[:4]) + (f" and {len(pairs) - 4} more" if len(pairs) > 4 else "")
    return [
        f"{shown}: SYS (across CPU sockets) between GPUs the NUMA Affinity column puts on one NUMA node; "
        "the NUMA advice assumes the column is right: check the capture"
    ]


def _first_cpu(affinity: str) -> int:
    m = _NUMBER.match(affinity)
    return int(m.group()) if m else 0


def _derive_numa(gpus: list[SmiGpu], links: list[SmiLink], warnings: list[str]) -> list[SmiGpu]:
    """NUMA nodes for a capture without a "NUMA Affinity" column (older nvidia-smi, DGX-1 era).

    Distinct CPU-affinity sets are distinct NUMA nodes (numbered in CPU order); without CPU affinity,
    GPUs joined by a PCIe path that stays within a socket (PIX, PXB, PHB, NODE) share a node and SYS
    means different nodes. A SYS pair inside one affinity set contradicts the derivation: nothing is
    derived then.
    """
    if not gpus:
        return gpus
    node_of: dict[int, int] = {}
    if all(g.cpu_affinity for g in gpus):
        sets = sorted({g.cpu_affinity for g in gpus}, key=lambda a: (_first_cpu(a or ""), a))
        numbering = {a: i for i, a in enumerate(sets)}
        node_of = {g.index: numbering[g.cpu_affinity] for g in gpus}
        how = "distinct CPU-affinity sets"
    else:
        parent = {g.index: g.index for g in gpus}

        def root(i: int) -> int:
            while parent[i] != i:
                i = parent[i]
            return i

        for link in links:
            if link.kind in ("PIX", "PXB", "PHB", "NODE"):
                parent[root(link.a)] = root(link.b)
        pairs = {(x.a, x.b): x.kind for x in links}
        for i, a in enumerate(gpus):
            for b in gpus[i + 1 :]:
                if root(a.index) != root(b.index) and pairs.get((a.index, b.index)) != "SYS":
                    warnings.append(
                        "no NUMA Affinity or CPU Affinity column and the PCIe paths do not separate the GPUs "
                        "into NUMA nodes (SYS): NUMA left unknown"
                    )
                    return gpus
        roots = sorted({root(g.index) for g in gpus})
        node_of = {g.index: roots.index(root(g.index)) for g in gpus}
        how = "the PCIe paths (SYS between GPUs means different NUMA nodes)"
    for x in links:
        if x.kind == "SYS" and node_of[x.a] == node_of[x.b]:
            warnings.append(
                f"GPU{x.a}/GPU{x.b} are SYS apart but share a CPU affinity: NUMA nodes not derived, left unknown"
            )
            return gpus
    warnings.append(
        f"no NUMA Affinity column: NUMA nodes derived from {how}; node numbers follow the CPU order, "
        "not necessarily the OS numbering"
    )
    return [
        SmiGpu(g.index, node_of[g.index], g.cpu_affinity, g.gpu_numa_id) if g.numa_node is None else g for g in gpus
    ]


def _gpu_from_row(
    column: str, index: int, row: tuple[int, list[str]] | None, header: _Header, warnings: list[str]
) -> SmiGpu:
    if row is None:
        return SmiGpu(index, None, None, None)
    number, cells = row
    values = dict(zip(header.info, cells[len(header.matrix) :], strict=False))
    affinity = values.get("CPU Affinity")
    if affinity is not None and affinity.upper() in ("N/A", "[N/A]"):
        affinity = None
    numa = values.get("NUMA Affinity")
    gpu_numa = values.get("GPU NUMA ID")
    return SmiGpu(
        index=index,
        numa_node=_optional_int(numa, "NUMA Affinity", column, number, warnings) if numa else None,
        cpu_affinity=affinity,
        gpu_numa_id=_optional_int(gpu_numa, "GPU NUMA ID", column, number, warnings) if gpu_numa else None,
    )


def _pairs(
    gpu_columns: list[tuple[str, int]],
    rows: dict[str, tuple[int, list[str]]],
    column_index: dict[str, int],
    warnings: list[str],
    **bandwidth: float | int | None,
) -> tuple[list[SmiLink], int]:
    readable = 0

    def cell(row_name: str, col_name: str) -> _Cell | None:
        nonlocal readable
        if row_name not in rows:
            return None
        number, cells = rows[row_name]
        parsed = _parse_cell(cells[column_index[col_name]], number)
        if parsed.kind is None:
            if parsed.label.upper() in ("N/A", "[N/A]"):
                warnings.append(f"line {number}: {row_name}/{col_name} is N/A (no path reported)")
            else:
                warnings.append(
                    f"line {number}: {row_name}/{col_name} has unknown label {parsed.label!r}; pair ignored"
                )
            return None
        readable += 1
        return parsed

    for name, _ in gpu_columns:
        if name in rows:
            number, cells = rows[name]
            own = cells[column_index[name]].upper()
            if own != "X":
                warnings.append(f"line {number}: {name}/{name} should be X, found {own!r}")

    links: list[SmiLink] = []
    unknown_pairs: list[str] = []
    for i, (name_i, idx_i) in enumerate(gpu_columns):
        for name_j, idx_j in gpu_columns[i + 1 :]:
            upper, lower = cell(name_i, name_j), cell(name_j, name_i)
            if upper is None and lower is None:
                unknown_pairs.append(f"{name_i}-{name_j}")
                continue
            chosen = upper or lower
            if upper is not None and lower is not None and (upper.kind, upper.nvlinks) != (lower.kind, lower.nvlinks):
                chosen = _worse(upper, lower)
                warnings.append(
                    f"{name_i}/{name_j} is asymmetric: line {upper.line} says {upper.label}, "
                    f"line {lower.line} says {lower.label}; keeping the worse, {chosen.label}"
                )
            assert chosen is not None and chosen.kind is not None
            a, b = sorted((idx_i, idx_j))
            gbps = link_gbps(chosen.kind, nvlinks=chosen.nvlinks, **bandwidth)  # type: ignore[arg-type]
            links.append(SmiLink(a, b, chosen.label.upper(), chosen.kind, chosen.nvlinks, gbps))
    if unknown_pairs:
        warnings.append(f"no link label for {len(unknown_pairs)} GPU pair(s): {', '.join(unknown_pairs)}")
    links.sort(key=lambda x: (x.a, x.b))
    return links, readable


_BUS_ID = re.compile(r"^([0-9a-fA-F]{1,8}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
_CSV_FIELDS = ("index", "pci.bus_id", "module_id")


def normalize_bus_id(raw: str) -> str | None:
    """``00000000:3B:00.0`` (nvidia-smi) -> ``0000:3b:00.0`` (vSphere); None when it is not a bus id."""
    m = _BUS_ID.match(raw.strip())
    if m is None:
        return None
    domain, bus, device, function = m.groups()
    return f"{int(domain, 16):04x}:{bus.lower()}:{device.lower()}.{function}"


def parse_gpu_query_csv(text: str) -> list[SmiGpuIdentity]:
    """Parse ``nvidia-smi --query-gpu=index,pci.bus_id[,module_id] --format=csv[,noheader]``."""
    lines = _check_text(text)
    fields: tuple[str, ...] | None = None
    result: list[SmiGpuIdentity] = []
    seen: dict[int, int] = {}
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or _PREAMBLE.match(line):
            continue
        cells = [c.strip() for c in stripped.split(",")]
        if fields is None and cells[0].lower() == "index":
            names = tuple(c.split(" [")[0].lower() for c in cells)  # "memory.total [MiB]" style units
            unknown = [n for n in names if n not in _CSV_FIELDS]
            if unknown or "pci.bus_id" not in names:
                raise SmiParseError(
                    f"header must name index, pci.bus_id and optionally module_id, got {', '.join(names)}",
                    number,
                )
            fields = names
            continue
        if fields is None:
            fields = _CSV_FIELDS[: len(cells)] if len(cells) in (2, 3) else ()
        if len(cells) != len(fields):
            raise SmiParseError(
                f"expected {len(fields) or '2 or 3'} comma-separated fields "
                f"({', '.join(fields) or 'index, pci.bus_id[, module_id]'}), got {len(cells)}",
                number,
            )
        values = dict(zip(fields, cells, strict=True))
        if not _NUMBER.fullmatch(values["index"]):
            raise SmiParseError(f"index {values['index']!r} is not a number", number)
        index = int(values["index"])
        bus_id = normalize_bus_id(values["pci.bus_id"])
        if bus_id is None:
            raise SmiParseError(
                f"pci.bus_id {values['pci.bus_id']!r} is not a PCI address like 00000000:3B:00.0", number
            )
        module = values.get("module_id")
        module_id: int | None = None
        if module is not None and module.upper() not in ("N/A", "[N/A]"):
            if not _NUMBER.fullmatch(module):
                raise SmiParseError(f"module_id {module!r} is not a number or [N/A]", number)
            module_id = int(module)
        if index in seen:
            raise SmiParseError(f"GPU index {index} listed twice (first on line {seen[index]})", number)
        seen[index] = number
        result.append(SmiGpuIdentity(index, bus_id, module_id))
    if not result:
        raise SmiParseError("no GPU lines found (expected 'index, pci.bus_id[, module_id]' rows)")
    return sorted(result, key=lambda g: g.index)

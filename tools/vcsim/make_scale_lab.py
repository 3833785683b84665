#!/usr/bin/env python3
"""Generate a large, deterministic GPU lab for tools/vcsim/gpulab (Python 3 stdlib only).

    python3 tools/vcsim/make_scale_lab.py --clusters 10 --hosts 100 --gpus 8 --vms 4000 --seed 1 > scale.json

--hosts is hosts *per cluster*; --gpus is GPUs per host. 8-GPU hosts get an HGX H100 topology
(4 PCIe switches, 2 NUMA nodes, 4 NVSwitch functions); other GPU counts (0..16) get a simpler
2-socket PCIe server topology (pairs of GPUs behind a PCIe switch). VMs are spread over hosts
with a mix of vGPU (time-sliced, same-size), MIG, passthrough and GPU-less VMs, consistent with
each GPU's graphics type, the same-size rule and the GPU's framebuffer. A MIG-enabled GPU lists only
MIG-backed vGPU types, as a GPU in MIG mode reports them, so the advisor reads an idle one as MIG too.
On 8-GPU (HGX) hosts the passthrough and MIG shares are configurations vSphere cannot place on an
NVSwitch board (time-sliced vGPU only, docs/domain.md 3.7): the advisor counts their idle GPUs as
unavailable, which the lab keeps on purpose.

This module also holds the topology builders used by make_demo_lab.py.
"""
import argparse
import json
import random
import sys

# --- GPU boards ------------------------------------------------------------------------------

H100_SXM = {
    "device_id": "0x2330", "model": "NVIDIA H100 80GB HBM3", "memory_mb": 81559,
    "profiles": ["nvidia_h100xm-80c", "nvidia_h100xm-40c", "nvidia_h100xm-20c", "nvidia_h100xm-16c",
                 "nvidia_h100xm-10c", "nvidia_h100xm-8c", "nvidia_h100xm-5c", "nvidia_h100xm-4c",
                 "nvidia_h100xm-1-10c", "nvidia_h100xm-1-20c", "nvidia_h100xm-2-20c", "nvidia_h100xm-3-40c",
                 "nvidia_h100xm-4-40c", "nvidia_h100xm-7-80c"],
}
H100_NVL = {
    "device_id": "0x2321", "model": "NVIDIA H100 NVL", "memory_mb": 95830,
    "profiles": ["nvidia_h100l-94c", "nvidia_h100l-47c", "nvidia_h100l-23c", "nvidia_h100l-15c",
                 "nvidia_h100l-11c", "nvidia_h100l-6c", "nvidia_h100l-4c"],
}
A100_PCIE_80 = {
    "device_id": "0x20b5", "model": "NVIDIA A100 80GB PCIe", "memory_mb": 81920,
    "profiles": ["grid_a100d-80c", "grid_a100d-40c", "grid_a100d-20c", "grid_a100d-16c", "grid_a100d-10c",
                 "grid_a100d-8c", "grid_a100d-4c", "grid_a100d-1-10c", "grid_a100d-2-20c", "grid_a100d-3-40c",
                 "grid_a100d-4-40c", "grid_a100d-7-80c"],
}
A30 = {
    "device_id": "0x20b7", "model": "NVIDIA A30", "memory_mb": 24576,
    "profiles": ["grid_a30-24c", "grid_a30-12c", "grid_a30-8c", "grid_a30-6c", "grid_a30-4c",
                 "grid_a30-1-6c", "grid_a30-2-12c", "grid_a30-4-24c"],
}
L40S = {
    "device_id": "0x26b9", "model": "NVIDIA L40S", "memory_mb": 46068,
    "profiles": ["nvidia_l40s-48c", "nvidia_l40s-24c", "nvidia_l40s-16c", "nvidia_l40s-12c",
                 "nvidia_l40s-8c", "nvidia_l40s-6c", "nvidia_l40s-4c"],
}

INTEL_RP = ("0x8086", "0x352a", "Sapphire Rapids PCIe Root Port")
AMD_RP = ("0x1022", "0x14ab", "Genoa/Bergamo PCIe GPP Bridge")
PEX_SWITCH = ("0x1000", "0xc030", "PEX890xx PCIe Gen 5 Switch")


def profile_gb(p):
    """Framebuffer GB and MIG flag of a vGPU type name (grid_a100d-20c -> 20, nvidia_h100xm-3-40c -> 40)."""
    parts = p.split("-")
    return int(parts[-1].rstrip("abcqme")), len(parts) == 3


def gpu_profiles(board, graphics_type, mig_enabled):
    """The vGPU types a GPU lists: none in passthrough (direct), only MIG-backed ones with MIG enabled
    (a GPU in MIG mode offers no time-sliced type), otherwise the board's time-sliced and MIG types."""
    if graphics_type == "direct":
        return []
    return [p for p in board["profiles"] if profile_gb(p)[1] or not mig_enabled]


def set_mig(gpu, board, enabled):
    """Turn MIG on or off on a lab GPU, with its mode and the vGPU types it then lists."""
    gpu["mig_enabled"] = enabled
    if enabled:
        gpu["vgpu_mode"] = "multiInstanceGpu"
    gpu["profiles"] = gpu_profiles(board, gpu["graphics_type"], enabled)


def sbdf(bus, slot=0, fn=0):
    return "0000:%02x:%02x.%x" % (bus, slot, fn)


class HostBuilder:
    """Builds one lab host dict with a consistent PCIe tree and NUMA layout."""

    def __init__(self, name, cluster, vendor, model, sockets, cores, threads, memory_mb, cpu_model="", **extra):
        self.h = {"name": name, "cluster": cluster, "vendor": vendor, "model": model, "cpu_model": cpu_model,
                  "cpu": {"sockets": sockets, "cores": cores, "threads": threads},
                  "memory_mb": memory_mb, "connection_state": "connected", "maintenance": False,
                  "assignment_policy": "performance", "default_graphics_type": "shared",
                  "numa_nodes": [], "bridges": [], "other_pci": [], "gpus": []}
        self.h.update(extra)
        per = threads // sockets
        for s in range(sockets):
            self.h["numa_nodes"].append({"id": s, "cpus": list(range(s * per, (s + 1) * per)),
                                         "memory_mb": memory_mb // sockets, "pci_ids": []})
        self.parent = {}

    def _numa(self, socket, pci_id):
        if socket is not None:
            self.h["numa_nodes"][socket]["pci_ids"].append(pci_id)

    def bridge(self, pci_id, parent, socket, ident):
        vendor, device, name = ident
        self.h["bridges"].append({"pci_id": pci_id, "parent": parent, "vendor_id": vendor,
                                  "device_id": device, "name": name})
        self.parent[pci_id] = parent
        self._numa(socket, pci_id)
        return pci_id

    def root_port(self, bus, socket, slot=1, fn=0, ident=INTEL_RP):
        return self.bridge(sbdf(bus, slot, fn), None, socket, ident)

    def switch(self, root, up_bus, ports, socket, ident=PEX_SWITCH):
        """PCIe switch: upstream port on up_bus, `ports` downstream ports on up_bus+1 (slots 0..),
        whose secondary buses are up_bus+2+i. Returns [(downstream_port_id, secondary_bus)]."""
        up = self.bridge(sbdf(up_bus), root, socket, ident)
        return [(self.bridge(sbdf(up_bus + 1, i), up, socket, ident), up_bus + 2 + i) for i in range(ports)]

    def path(self, parent):
        chain = []
        while parent:
            chain.insert(0, parent)
            parent = self.parent[parent]
        return chain

    def gpu(self, bus, parent, socket, board, graphics_type, vgpu_mode=None, module_id=None,
            mig_enabled=False, hardware_label=""):
        g = {"pci_id": sbdf(bus), "device_id": board["device_id"], "model": board["model"],
             "memory_mb": board["memory_mb"], "numa_node": socket, "pcie_path": self.path(parent),
             "graphics_type": graphics_type, "vgpu_mode": vgpu_mode, "mig_enabled": mig_enabled,
             "module_id": module_id, "hardware_label": hardware_label,
             "profiles": gpu_profiles(board, graphics_type, mig_enabled),
             "consumers": []}
        self.h["gpus"].append(g)
        self._numa(socket, g["pci_id"])
        return g

    def other(self, pci_id, parent, socket, class_id, vendor, device, name):
        self.h["other_pci"].append({"pci_id": pci_id, "class_id": class_id, "vendor_id": vendor,
                                    "device_id": device, "name": name, "parent": parent})
        self._numa(socket, pci_id)

    def mgmt_nic(self, socket=0, bus=0x05, ident=INTEL_RP):
        rp = self.root_port(bus, socket, ident=ident)
        self.other(sbdf(bus + 1), rp, socket, "0x0200", "0x14e4", "0x16d7",
                   "BCM57414 NetXtreme-E 10Gb/25Gb RDMA Ethernet Controller")


def hgx_h100_host(name, cluster, graphics_type="sharedDirect", vgpu_mode="sameSize", mig_enabled=False):
    """Supermicro SYS-821GE-TNHR, HGX H100 8-GPU: per socket 2 root ports, each with a PCIe Gen5
    switch carrying 2 GPUs + 1 ConnectX-7; 4 NVSwitch functions behind their own switch on socket 1."""
    b = HostBuilder(name, cluster, "Supermicro", "SYS-821GE-TNHR", 2, 112, 224, 2097152,
                    cpu_model="Intel(R) Xeon(R) Platinum 8480+")
    b.mgmt_nic(0)
    if graphics_type == "direct":
        vgpu_mode = None
    elif mig_enabled:
        vgpu_mode = "multiInstanceGpu"
    module = 1
    for socket, bases in ((0, (0x15, 0x37)), (1, (0x97, 0xb9))):
        for base in bases:
            rp = b.root_port(base, socket)
            (d0, b0), (d1, b1), (d2, b2) = b.switch(rp, base + 1, 3, socket)
            b.gpu(b0, d0, socket, H100_SXM, graphics_type, vgpu_mode, module, mig_enabled)
            b.other(sbdf(b1), d1, socket, "0x0200", "0x15b3", "0x1021", "MT2910 Family [ConnectX-7]")
            b.gpu(b2, d2, socket, H100_SXM, graphics_type, vgpu_mode, module + 1, mig_enabled)
            module += 2
    rp = b.root_port(0xd9, 1)
    for d, sec in b.switch(rp, 0xda, 4, 1):
        b.other(sbdf(sec), d, 1, "0x0680", "0x10de", "0x22a3", "GH100 [H100 NVSwitch]")
    return b


def pcie_gpu_host(name, cluster, board, ngpus, graphics_type, vgpu_mode="sameSize",
                  vendor="Dell Inc.", model="PowerEdge R760xa", cores=64, threads=128, memory_mb=1048576,
                  cpu_model="Intel(R) Xeon(R) Gold 6448Y"):
    """Simple 2-socket PCIe server: GPUs alternate between sockets, in pairs behind a PCIe switch
    (a trailing odd GPU hangs directly off a root port). Up to 16 GPUs."""
    if ngpus > 16:
        raise SystemExit("make_scale_lab: PCIe topology supports at most 16 GPUs per host")
    b = HostBuilder(name, cluster, vendor, model, 2, cores, threads, memory_mb, cpu_model=cpu_model)
    b.mgmt_nic(0)
    if graphics_type == "direct":
        vgpu_mode = None
    per_socket = [(ngpus + 1) // 2, ngpus // 2]
    for socket in (0, 1):
        n = per_socket[socket]
        base = 0x15 if socket == 0 else 0x97
        while n > 0:
            rp = b.root_port(base, socket)
            if n >= 2:
                (d0, b0), (d1, b1) = b.switch(rp, base + 1, 2, socket)
                b.gpu(b0, d0, socket, board, graphics_type, vgpu_mode)
                b.gpu(b1, d1, socket, board, graphics_type, vgpu_mode)
                n -= 2
            else:
                b.gpu(base + 1, rp, socket, board, graphics_type, vgpu_mode)
                n -= 1
            base += 0x10
    return b


# --- VM placement for the scale lab ------------------------------------------------------------

def full_gb(gpu):
    return max(profile_gb(p)[0] for p in gpu["profiles"])


def try_vgpu(rng, host, vm_name):
    """Place one time-sliced or MIG vGPU on a host's sharedDirect GPU; returns True if placed."""
    gpus = [g for g in host["gpus"] if g["graphics_type"] == "sharedDirect" and g["profiles"]]
    rng.shuffle(gpus)
    for g in gpus:
        mig = g["mig_enabled"]
        cands = [p for p in g["profiles"] if profile_gb(p)[1] == mig]
        used = [c["profile"] for c in g["consumers"]]
        if used:
            prof = used[0]  # same-size (and homogeneous MIG): reuse the GPU's profile
        else:
            # prefer mid-size profiles
            prof = rng.choice([p for p in cands if 8 <= profile_gb(p)[0] <= 40] or cands)
        gb = profile_gb(prof)[0]
        if (len(used) + 1) * gb > full_gb(g):
            continue
        if mig and len(used) + 1 > 7:
            continue
        g["consumers"].append({"vm": vm_name, "kind": "mig" if mig else "vgpu", "profile": prof})
        return True
    return False


def try_passthrough(rng, host, vm_name, count, dynamic):
    free = [g for g in host["gpus"] if g["graphics_type"] == "direct" and not g["consumers"]]
    if len(free) < count:
        return False
    for g in free[:count]:
        g["consumers"].append({"vm": vm_name, "kind": "dynamic-passthrough" if dynamic else "passthrough",
                               "profile": None})
    return True


def make_scale_lab(clusters, hosts_per_cluster, gpus, nvms, seed):
    rng = random.Random(seed)
    lab = {"name": "scale-%dx%dx%d-%dvm-s%d" % (clusters, hosts_per_cluster, gpus, nvms, seed),
           "datacenter": "GPU-DC", "clusters": [], "hosts": [], "vms": []}
    for c in range(clusters):
        cname = "gpu-cluster-%02d" % c
        lab["clusters"].append({"name": cname})
        for h in range(hosts_per_cluster):
            hname = "esx-%02d-%03d.scale.local" % (c, h)
            r = rng.random()
            # 60% vGPU (time-sliced), 10% MIG, 30% passthrough
            if r < 0.6:
                gt, mig = "sharedDirect", False
            elif r < 0.7:
                gt, mig = "sharedDirect", True
            else:
                gt, mig = "direct", False
            if gpus == 8:
                b = hgx_h100_host(hname, cname, gt, "sameSize", mig)
            else:
                board = A100_PCIE_80 if (c + h) % 2 == 0 else L40S
                if board is L40S:
                    mig = False
                b = pcie_gpu_host(hname, cname, board, gpus, gt)
                for g in b.h["gpus"]:
                    set_mig(g, board, mig)
            host = b.h
            host["assignment_policy"] = rng.choice(["performance", "consolidation"])
            if rng.random() < 0.01:
                host["maintenance"] = True
            if rng.random() < 0.005:
                host["connection_state"] = rng.choice(["disconnected", "notResponding"])
            lab["hosts"].append(host)

    hosts = lab["hosts"]
    for i in range(nvms):
        name = "vm-%05d" % i
        r = rng.random()
        want = "none" if r < 0.1 else ("pt" if r < 0.4 else "vgpu")
        order = list(range(len(hosts)))
        start = rng.randrange(len(hosts)) if hosts else 0
        order = order[start:] + order[:start]
        placed_host = None
        for hi in order[:64]:  # bounded search keeps generation O(vms)
            host = hosts[hi]
            if want == "none":
                placed_host = host
                break
            if want == "pt":
                count = rng.choice([1, 1, 1, 2, 2, 4, 8])
                if try_passthrough(rng, host, name, count, dynamic=rng.random() < 0.2):
                    placed_host = host
                    break
            elif try_vgpu(rng, host, name):
                placed_host = host
                break
        if placed_host is None:  # cluster is full for this kind: GPU-less VM
            placed_host = hosts[order[0]] if hosts else None
        if placed_host is None:
            raise SystemExit("make_scale_lab: --vms > 0 needs at least one host")
        cpus = rng.choice([4, 8, 16, 32])
        mem = cpus * rng.choice([4096, 8192])
        lab["vms"].append({"name": name, "host": placed_host["name"],
                           "power_state": "poweredOff" if rng.random() < 0.05 else "poweredOn",
                           "cpus": cpus, "memory_mb": mem, "memory_reservation_mb": mem})
    return lab


# --- output ------------------------------------------------------------------------------------

def dumps(obj, indent=0, step=2):
    """JSON with dicts expanded and lists of scalars on one line (readable, diff-friendly)."""
    pad, pad2 = " " * indent, " " * (indent + step)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [pad2 + json.dumps(k) + ": " + dumps(v, indent + step, step) for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(x, (dict, list)) for x in obj):
            return "[" + ", ".join(json.dumps(x) for x in obj) + "]"
        return "[\n" + ",\n".join(pad2 + dumps(x, indent + step, step) for x in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--hosts", type=int, default=100, help="hosts per cluster")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs per host (8 = HGX H100 topology)")
    ap.add_argument("--vms", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pretty", action="store_true", help="human-readable output (larger)")
    a = ap.parse_args(argv)
    if min(a.clusters, a.hosts, a.gpus, a.vms) < 0:
        ap.error("counts must be >= 0")
    lab = make_scale_lab(a.clusters, a.hosts, a.gpus, a.vms, a.seed)
    sys.stdout.write((dumps(lab) if a.pretty else json.dumps(lab, separators=(",", ":"))) + "\n")


if __name__ == "__main__":
    main()

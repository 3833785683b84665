#!/usr/bin/env python3
"""Regenerate tools/vcsim/labs/demo.json and labs/edge.json (Python 3 stdlib only).

    python3 tools/vcsim/make_demo_lab.py            # writes labs/demo.json and labs/edge.json

demo.json: datacenter GPU-DC, clusters hgx-cluster and pcie-cluster, 5 GPU hosts (20 GPUs).
edge.json: small lab with the fault/edge cases a collector must cope with (host without NUMA info,
disconnected / maintenance hosts, standalone host, MIG, dynamic DirectPath I/O, suspended VM).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_scale_lab import (  # noqa: E402
    A30, A100_PCIE_80, AMD_RP, H100_NVL, L40S, HostBuilder, dumps, hgx_h100_host, profile_gb)


def vgpu(vm, profile, kind="vgpu"):
    return {"vm": vm, "kind": kind, "profile": profile}


def pt(vm, kind="passthrough"):
    return {"vm": vm, "kind": kind, "profile": None}


def vm(name, host, cpus, mem_mb, power="poweredOn"):
    return {"name": name, "host": host, "power_state": power, "cpus": cpus, "memory_mb": mem_mb,
            "memory_reservation_mb": mem_mb}


def by_module(host, module):
    return next(g for g in host["gpus"] if g["module_id"] == module)


def demo():
    hosts, vms = [], []

    # 1. HGX H100 8-GPU, time-sliced vGPU (sharedDirect, same-size)
    hgx = hgx_h100_host("esx-hgx-01.lab.local", "hgx-cluster").h
    by_module(hgx, 5)["consumers"].append(vgpu("llama-70b-tp2-a", "nvidia_h100xm-80c"))
    by_module(hgx, 7)["consumers"].append(vgpu("llama-70b-tp2-a", "nvidia_h100xm-80c"))
    by_module(hgx, 6)["consumers"].append(vgpu("mistral-7b", "nvidia_h100xm-80c"))
    hosts.append(hgx)
    vms += [vm("llama-70b-tp2-a", hgx["name"], 32, 262144), vm("mistral-7b", hgx["name"], 16, 131072)]

    # 2. Dell R760xa, 4x L40S passthrough: GPU0+GPU1 behind one switch (PIX), GPU2 on another
    #    root port of socket 0 (NODE), GPU3 on socket 1 (SYS).
    b = HostBuilder("esx-l40s-01.lab.local", "pcie-cluster", "Dell Inc.", "PowerEdge R760xa",
                    2, 64, 128, 1048576, cpu_model="Intel(R) Xeon(R) Gold 6448Y")
    b.mgmt_nic(0)
    rp = b.root_port(0x15, 0)
    (d0, s0), (d1, s1) = b.switch(rp, 0x16, 2, 0)
    b.gpu(s0, d0, 0, L40S, "direct")
    b.gpu(s1, d1, 0, L40S, "direct")
    rp = b.root_port(0x37, 0)
    g2 = b.gpu(0x38, rp, 0, L40S, "direct")
    rp = b.root_port(0x97, 1)
    b.gpu(0x98, rp, 1, L40S, "direct")
    g2["consumers"].append(pt("embed-svc"))
    hosts.append(b.h)
    vms.append(vm("embed-svc", b.h["name"], 8, 65536))

    # 3. Dell R7615 (1-socket AMD EPYC Genoa), 2x A100 PCIe 80GB on separate root ports, NUMA 0.
    b = HostBuilder("esx-a100-01.lab.local", "pcie-cluster", "Dell Inc.", "PowerEdge R7615",
                    1, 32, 64, 786432, cpu_model="AMD EPYC 9354P 32-Core Processor")
    b.mgmt_nic(0, bus=0x00, ident=AMD_RP)
    rp = b.root_port(0x40, 0, slot=1, fn=1, ident=AMD_RP)
    a0 = b.gpu(0x41, rp, 0, A100_PCIE_80, "sharedDirect", "sameSize")
    rp = b.root_port(0xc0, 0, slot=1, fn=1, ident=AMD_RP)
    a1 = b.gpu(0xc1, rp, 0, A100_PCIE_80, "sharedDirect", "sameSize")
    a0["consumers"].append(vgpu("chat-a", "grid_a100d-10c"))
    a1["consumers"].append(vgpu("chat-b", "grid_a100d-10c"))
    hosts.append(b.h)
    vms += [vm("chat-a", b.h["name"], 8, 65536), vm("chat-b", b.h["name"], 8, 65536),
            vm("batch-x", b.h["name"], 16, 32768, "poweredOff")]

    # 4. Supermicro SYS-521GE-TNRT, 4x H100 NVL passthrough; pairs (0,1) and (2,3) behind one PCIe
    #    switch each (NVLink bridge pairs physically -- not visible in the vSphere API).
    b = HostBuilder("esx-h100nvl-01.lab.local", "pcie-cluster", "Supermicro", "SYS-521GE-TNRT",
                    2, 64, 128, 1048576, cpu_model="Intel(R) Xeon(R) Platinum 8462Y+")
    b.mgmt_nic(0)
    nvl = []
    for socket, base in ((0, 0x15), (1, 0x97)):
        rp = b.root_port(base, socket)
        for d, sec in b.switch(rp, base + 1, 2, socket):
            nvl.append(b.gpu(sec, d, socket, H100_NVL, "direct"))
    nvl[2]["consumers"].append(pt("llama-8b-nvl"))
    nvl[3]["consumers"].append(pt("llama-8b-nvl"))
    hosts.append(b.h)
    vms.append(vm("llama-8b-nvl", b.h["name"], 16, 131072))

    # 5. Dell R7615 (1-socket AMD EPYC Genoa), 2x A30 24GB PCIe on separate root ports, NUMA 0, MIG enabled
    #    (MIG-backed vGPU: the host lists only the A30's MIG-backed C types). GPU0 has a 2-slice MIG vGPU.
    b = HostBuilder("esx-a30-01.lab.local", "pcie-cluster", "Dell Inc.", "PowerEdge R7615",
                    1, 24, 48, 524288, cpu_model="AMD EPYC 9254 24-Core Processor")
    b.mgmt_nic(0, bus=0x00, ident=AMD_RP)
    mig_types = [p for p in A30["profiles"] if profile_gb(p)[1]]
    a30 = []
    for bus in (0x40, 0xc0):
        rp = b.root_port(bus, 0, slot=1, fn=1, ident=AMD_RP)
        g = b.gpu(bus + 1, rp, 0, A30, "sharedDirect", "multiInstanceGpu", mig_enabled=True)
        g["profiles"] = list(mig_types)
        a30.append(g)
    a30[0]["consumers"].append(vgpu("rag-embed", "grid_a30-2-12c", "mig"))
    hosts.append(b.h)
    vms.append(vm("rag-embed", b.h["name"], 8, 65536))

    return {"name": "demo", "datacenter": "GPU-DC",
            "clusters": [{"name": "hgx-cluster"}, {"name": "pcie-cluster"}],
            "hosts": hosts, "vms": vms}


def edge():
    hosts, vms = [], []
    # MIG-enabled HGX (mixed MIG sizes on one GPU), consolidation policy
    h = hgx_h100_host("esx-hgx-mig-01.lab.local", "edge-cluster", mig_enabled=True).h
    h["assignment_policy"] = "consolidation"
    g = by_module(h, 1)
    g["consumers"] += [vgpu("mig-a", "nvidia_h100xm-3-40c", "mig"), vgpu("mig-b", "nvidia_h100xm-4-40c", "mig")]
    by_module(h, 2)["consumers"].append(vgpu("mig-c", "nvidia_h100xm-1-10c", "mig"))
    hosts.append(h)
    vms += [vm("mig-a", h["name"], 8, 65536), vm("mig-b", h["name"], 8, 65536, "suspended"),
            vm("mig-c", h["name"], 4, 32768)]

    # L40S host without NUMA info (numaInfo unset), dynamic DirectPath I/O with a hardware label
    b = HostBuilder("esx-nonuma-01.lab.local", "edge-cluster", "Dell Inc.", "PowerEdge R760xa",
                    2, 64, 128, 1048576, cpu_model="Intel(R) Xeon(R) Gold 6448Y")
    b.mgmt_nic(0)
    rp = b.root_port(0x15, 0)
    g0 = b.gpu(0x16, rp, 0, L40S, "direct", hardware_label="l40s-inference")
    rp = b.root_port(0x97, 1)
    g1 = b.gpu(0x98, rp, 1, L40S, "direct", hardware_label="l40s-inference")
    g0["consumers"].append(pt("dyn-a", "dynamic-passthrough"))
    b.h["numa_nodes"] = []
    for g in (g0, g1):
        g["numa_node"] = None
    hosts.append(b.h)
    vms.append(vm("dyn-a", b.h["name"], 8, 65536))

    # A GPU with graphics_type null (no graphicsInfo entry), host in maintenance mode
    b = HostBuilder("esx-maint-01.lab.local", "edge-cluster", "Dell Inc.", "PowerEdge R7615", 1, 32, 64, 524288,
                    cpu_model="AMD EPYC 9354P 32-Core Processor")
    rp = b.root_port(0x40, 0, slot=1, fn=1, ident=AMD_RP)
    b.gpu(0x41, rp, 0, A100_PCIE_80, None)
    b.h["maintenance"] = True
    hosts.append(b.h)

    # disconnected host and a not-responding standalone host (cluster null)
    b = HostBuilder("esx-disc-01.lab.local", "edge-cluster", "Dell Inc.", "PowerEdge R7615", 1, 32, 64, 524288,
                    cpu_model="AMD EPYC 9354P 32-Core Processor")
    rp = b.root_port(0x40, 0, slot=1, fn=1, ident=AMD_RP)
    b.gpu(0x41, rp, 0, A100_PCIE_80, "sharedDirect", "sameSize")
    b.h["connection_state"] = "disconnected"
    hosts.append(b.h)
    b = HostBuilder("esx-standalone-01.lab.local", None, "Dell Inc.", "PowerEdge R7615", 1, 32, 64, 524288,
                    cpu_model="AMD EPYC 9354P 32-Core Processor")
    rp = b.root_port(0x40, 0, slot=1, fn=1, ident=AMD_RP)
    b.gpu(0x41, rp, 0, A100_PCIE_80, "sharedDirect", "mixedSize")
    b.h["gpus"][0]["consumers"] += [vgpu("mixed-a", "grid_a100d-40c"), vgpu("mixed-b", "grid_a100d-20c")]
    b.h["connection_state"] = "notResponding"
    hosts.append(b.h)
    vms += [vm("mixed-a", b.h["name"], 8, 65536), vm("mixed-b", b.h["name"], 4, 32768)]

    return {"name": "edge", "datacenter": "GPU-DC", "clusters": [{"name": "edge-cluster"}],
            "hosts": hosts, "vms": vms}


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "labs")
    for name, lab in (("demo.json", demo()), ("edge.json", edge())):
        with open(os.path.join(here, name), "w") as f:
            f.write(dumps(lab) + "\n")
        print("wrote", os.path.join(here, name))


if __name__ == "__main__":
    main()

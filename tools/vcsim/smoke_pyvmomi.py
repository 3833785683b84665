#!/usr/bin/env python3
"""Smoke test of tools/vcsim/gpulab with a real vSphere client (pyvmomi).

    .venv/bin/python tools/vcsim/smoke_pyvmomi.py                    # demo lab + auth/delay/TLS checks
    .venv/bin/python tools/vcsim/smoke_pyvmomi.py --lab labs/edge.json --quick
    .venv/bin/python tools/vcsim/smoke_pyvmomi.py --lab /tmp/scale.json --quick --timing

Starts gpulab, waits for its READY line, connects with pyVim.connect.SmartConnect and reads the
inventory with ONE ContainerView + PropertyCollector.RetrievePropertiesEx (explicit pathSet), then
compares every served value with the lab file. Without --quick it also checks: wrong password ->
vim.fault.InvalidLogin, -delay-ms slows calls, and TLS verification against -cert-out.
Exit status 0 on success.
"""
import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

HERE = os.path.dirname(os.path.abspath(__file__))
USER, PWD = "gpulab", "s3cret!"

HOST_PROPS = ["name", "parent", "hardware.pciDevice", "hardware.numaInfo", "hardware.systemInfo",
              "hardware.cpuInfo", "hardware.memorySize", "config.graphicsInfo", "config.graphicsConfig",
              "config.sharedPassthruGpuTypes", "config.pciPassthruInfo", "runtime.connectionState",
              "runtime.inMaintenanceMode"]
VM_PROPS = ["name", "runtime.host", "runtime.powerState", "config.hardware.numCPU", "config.hardware.memoryMB",
            "config.hardware.device", "config.memoryAllocation.reservation"]
CLUSTER_PROPS = ["name", "parent"]


class Gpulab:
    """Runs gpulab as a child process; .url is the READY url."""

    def __init__(self, binary, lab, *extra, timeout=600):
        self.cmd = [binary, "-lab", lab, "-listen", "127.0.0.1:0", "-username", USER, "-password", PWD, *extra]
        t0 = time.monotonic()
        self.p = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr = []
        threading.Thread(target=lambda: self.stderr.extend(self.p.stderr), daemon=True).start()
        line = [None]
        reader = threading.Thread(target=lambda: line.__setitem__(0, self.p.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        self.startup_s = time.monotonic() - t0
        if not line[0] or not line[0].startswith("READY "):
            self.stop()
            raise SystemExit("gpulab did not become ready: %r\nstderr:\n%s" % (line[0], "".join(self.stderr)))
        self.url = line[0].split()[1]
        hostport = self.url.split("://", 1)[1].split("/", 1)[0]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)

    def rss_mb(self):
        try:
            with open("/proc/%d/status" % self.p.pid) as f:
                d = dict(line.split(":", 1) for line in f if ":" in line)
            return int(d["VmRSS"].split()[0]) / 1024, int(d["VmHWM"].split()[0]) / 1024
        except OSError:
            return None, None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def retrieve(si):
    """One ContainerView + one RetrievePropertiesEx (plus ContinueRetrievePropertiesEx if paged)."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [vim.HostSystem, vim.VirtualMachine, vim.ClusterComputeResource], True)
    PC = vmodl.query.PropertyCollector
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[
            PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)])],
        propSet=[PC.PropertySpec(type=vim.HostSystem, all=False, pathSet=HOST_PROPS),
                 PC.PropertySpec(type=vim.VirtualMachine, all=False, pathSet=VM_PROPS),
                 PC.PropertySpec(type=vim.ClusterComputeResource, all=False, pathSet=CLUSTER_PROPS)])
    pc = content.propertyCollector
    t0 = time.monotonic()
    res = pc.RetrievePropertiesEx(specSet=[spec], options=PC.RetrieveOptions(maxObjects=500))
    objs = list(res.objects)
    calls = 1
    while res.token:
        res = pc.ContinueRetrievePropertiesEx(token=res.token)
        objs += res.objects
        calls += 1
    elapsed = time.monotonic() - t0
    view.DestroyView()
    out = {"HostSystem": {}, "VirtualMachine": {}, "ClusterComputeResource": {}}
    for oc in objs:
        props = {p.name: p.val for p in oc.propSet}
        missing = [p.path for p in (oc.missingSet or [])]
        props["_missing"] = missing
        out[type(oc.obj).__name__.split(".")[-1]][oc.obj._moId] = props
    return out, elapsed, calls


def i16(hexstr):
    v = int(hexstr, 16)
    return v - 0x10000 if v > 0x7FFF else v


class Checker:
    def __init__(self):
        self.errors = []
        self.n = 0

    def eq(self, what, got, want):
        self.n += 1
        if got != want:
            self.errors.append("%s: got %r, want %r" % (what, got, want))


def check(lab, inv, c):
    clusters = {p["name"]: moid for moid, p in inv["ClusterComputeResource"].items()}
    hosts = {p["name"]: (moid, p) for moid, p in inv["HostSystem"].items()}
    vms = {p["name"]: (moid, p) for moid, p in inv["VirtualMachine"].items()}
    vm_name_by_moid = {moid: p["name"] for moid, p in inv["VirtualMachine"].items()}
    host_name_by_moid = {moid: p["name"] for moid, p in inv["HostSystem"].items()}
    c.eq("cluster names", sorted(clusters), sorted(x["name"] for x in lab["clusters"]))
    c.eq("host names", sorted(hosts), sorted(h["name"] for h in lab["hosts"]))
    c.eq("vm names", sorted(vms), sorted(v["name"] for v in lab["vms"]))
    for obj in list(inv["HostSystem"].values()) + list(inv["VirtualMachine"].values()):
        if obj["_missing"]:
            c.errors.append("%s: missingSet %s" % (obj.get("name"), obj["_missing"]))
    stats = {"gpus": 0, "bridges": 0, "other": 0, "vgpu": 0, "passthrough": 0, "dynamic": 0}

    for h in lab["hosts"]:
        if h["name"] not in hosts:
            continue
        _, p = hosts[h["name"]]
        n = h["name"]
        if h.get("cluster"):
            c.eq(n + " parent", isinstance(p["parent"], vim.ClusterComputeResource)
                 and p["parent"]._moId == clusters.get(h["cluster"]), True)
        else:
            c.eq(n + " parent type", type(p["parent"]).__name__, "vim.ComputeResource")
        si, cpu = p["hardware.systemInfo"], p["hardware.cpuInfo"]
        c.eq(n + " vendor/model", (si.vendor, si.model), (h["vendor"], h["model"]))
        c.eq(n + " cpu", (cpu.numCpuPackages, cpu.numCpuCores, cpu.numCpuThreads),
             (h["cpu"]["sockets"], h["cpu"]["cores"], h["cpu"]["threads"]))
        c.eq(n + " memorySize", p["hardware.memorySize"], h["memory_mb"] * 1024 * 1024)
        c.eq(n + " connectionState", p["runtime.connectionState"], h.get("connection_state") or "connected")
        c.eq(n + " inMaintenanceMode", p["runtime.inMaintenanceMode"], bool(h.get("maintenance")))

        pci = {d.id: d for d in p["hardware.pciDevice"]}
        want_ids = [b["pci_id"] for b in h["bridges"]] + [g["pci_id"] for g in h["gpus"]] + \
                   [o["pci_id"] for o in h.get("other_pci") or []]
        c.eq(n + " pciDevice ids", sorted(pci), sorted(want_ids))
        for b in h["bridges"]:
            d = pci.get(b["pci_id"])
            if d:
                c.eq(n + " bridge " + b["pci_id"], (d.classId, d.vendorId, d.deviceId, d.parentBridge or "", d.deviceName),
                     (i16(b.get("class_id") or "0x0604"), i16(b["vendor_id"]), i16(b["device_id"]), b["parent"] or "", b["name"]))
        for o in h.get("other_pci") or []:
            d = pci.get(o["pci_id"])
            if d:
                c.eq(n + " other " + o["pci_id"], (d.classId, d.vendorId, d.deviceId, d.parentBridge or ""),
                     (i16(o["class_id"]), i16(o["vendor_id"]), i16(o["device_id"]), o["parent"] or ""))
        stats["bridges"] += len(h["bridges"])
        stats["other"] += len(h.get("other_pci") or [])

        numa = p.get("hardware.numaInfo")  # unset properties are omitted from propSet
        if not h.get("numa_nodes"):
            c.eq(n + " numaInfo", numa, None)
        else:
            c.eq(n + " numNodes", numa.numNodes, len(h["numa_nodes"]))
            got = {x.typeId: (list(x.cpuID), sorted(x.pciId or []), x.memoryRangeLength) for x in numa.numaNode}
            want = {x["id"]: (x["cpus"], sorted(x["pci_ids"]), x["memory_mb"] * 1024 * 1024) for x in h["numa_nodes"]}
            c.eq(n + " numaNode", got, want)

        ginfo = {g.pciId: g for g in p.get("config.graphicsInfo") or []}
        gconf = p["config.graphicsConfig"]
        c.eq(n + " graphicsConfig", (gconf.hostDefaultGraphicsType, gconf.sharedPassthruAssignmentPolicy),
             (h.get("default_graphics_type") or "shared", h.get("assignment_policy") or "performance"))
        c.eq(n + " graphicsConfig.deviceType", sorted((d.deviceId, d.graphicsType) for d in gconf.deviceType or []),
             sorted((g["pci_id"], g["graphics_type"]) for g in h["gpus"] if g["graphics_type"]))
        c.eq(n + " sharedPassthruGpuTypes", list(p.get("config.sharedPassthruGpuTypes") or []),
             sorted({x for g in h["gpus"] for x in g["profiles"]}))
        ppt = {x.id: x for x in p.get("config.pciPassthruInfo") or []}
        for g in h["gpus"]:
            stats["gpus"] += 1
            gid = g["pci_id"]
            d = pci.get(gid)
            if d:
                c.eq(n + " gpu " + gid, (d.classId, d.vendorId, d.deviceId, d.parentBridge or "", d.deviceName,
                                         "0000:%02x:%02x.%x" % (d.bus, d.slot, d.function)),
                     (0x0302, 0x10DE, i16(g["device_id"]), (g["pcie_path"] or [""])[-1], g["model"], gid))
            if g["graphics_type"]:
                gi = ginfo.get(gid)
                c.eq(n + " graphicsInfo " + gid + " present", gi is not None, True)
                if gi:
                    c.eq(n + " graphicsInfo " + gid, (gi.graphicsType, gi.memorySizeInKB, gi.deviceName, gi.vendorName),
                         (g["graphics_type"], g["memory_mb"] * 1024, g["model"], "NVIDIA Corporation"))
                    c.eq(n + " graphicsInfo.vm " + gid, sorted(vm_name_by_moid.get(v._moId) for v in gi.vm or []),
                         sorted({x["vm"] for x in g["consumers"]}))
            else:
                c.eq(n + " graphicsInfo " + gid + " absent", gid in ginfo, False)
            x = ppt.get(gid)
            c.eq(n + " pciPassthruInfo " + gid, x and (x.passthruEnabled, x.passthruActive, x.dependentDevice),
                 (g["graphics_type"] == "direct", g["graphics_type"] == "direct", gid))

    # VMs
    uses = {}
    for h in lab["hosts"]:
        for g in h["gpus"]:
            for u in g["consumers"]:
                uses.setdefault(u["vm"], []).append((g, u))
    for v in lab["vms"]:
        if v["name"] not in vms:
            continue
        _, p = vms[v["name"]]
        n = "vm " + v["name"]
        c.eq(n + " host", host_name_by_moid.get(p["runtime.host"]._moId), v["host"])
        c.eq(n + " powerState", p["runtime.powerState"], v.get("power_state") or "poweredOn")
        c.eq(n + " numCPU/memoryMB", (p["config.hardware.numCPU"], p["config.hardware.memoryMB"]), (v["cpus"], v["memory_mb"]))
        c.eq(n + " reservation", p["config.memoryAllocation.reservation"], v.get("memory_reservation_mb") or 0)
        devs = [d for d in p["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualPCIPassthrough)]
        got, want = [], []
        for d in devs:
            b = d.backing
            if isinstance(b, vim.vm.device.VirtualPCIPassthrough.VmiopBackingInfo):
                got.append(("vgpu", b.vgpu))
                stats["vgpu"] += 1
            elif isinstance(b, vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo):
                got.append(("passthrough", b.id, b.deviceId, b.vendorId, b.deviceName))
                stats["passthrough"] += 1
            elif isinstance(b, vim.vm.device.VirtualPCIPassthrough.DynamicBackingInfo):
                got.append(("dynamic-passthrough", b.assignedId, [(a.vendorId, a.deviceId) for a in b.allowedDevice],
                            b.customLabel or ""))
                stats["dynamic"] += 1
            else:
                got.append(("unknown", type(b).__name__))
        for g, u in uses.get(v["name"], []):
            if u["kind"] in ("vgpu", "mig", "device-group"):
                want.append(("vgpu", u["profile"]))
            elif u["kind"] == "passthrough":
                want.append(("passthrough", g["pci_id"], "%x" % int(g["device_id"], 16), 0x10DE, g["model"]))
            else:
                want.append(("dynamic-passthrough", g["pci_id"], [(0x10DE, int(g["device_id"], 16))], g["hardware_label"]))
        c.eq(n + " PCI passthrough devices", sorted(got, key=repr), sorted(want, key=repr))
        c.eq(n + " device keys unique", len({d.key for d in p["config.hardware.device"]}), len(p["config.hardware.device"]))
    return stats


def connect(g, pwd=PWD, **kw):
    if "sslContext" not in kw:
        kw["disableSslCertValidation"] = True
    return SmartConnect(host=g.host, port=g.port, user=USER, pwd=pwd, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpulab", default=os.path.join(HERE, "gpulab"))
    ap.add_argument("--lab", default=os.path.join(HERE, "labs", "demo.json"))
    ap.add_argument("--quick", action="store_true", help="skip the auth/delay/TLS checks")
    ap.add_argument("--timing", action="store_true", help="print startup/memory/retrieval timing")
    ap.add_argument("--repeat", type=int, default=1, help="time N RetrievePropertiesEx rounds")
    a = ap.parse_args()
    with open(a.lab) as f:
        lab = json.load(f)
    demo = os.path.basename(a.lab) == "demo.json"
    failures = []

    g = Gpulab(a.gpulab, a.lab)
    try:
        rss, hwm = g.rss_mb()
        print("gpulab ready in %.2fs at %s (RSS %.0f MB, peak %.0f MB)" % (g.startup_s, g.url, rss or 0, hwm or 0))
        t0 = time.monotonic()
        si = connect(g)
        print("SmartConnect ok in %.2fs: %s, apiVersion %s" % (time.monotonic() - t0, si.content.about.fullName,
                                                                si.content.about.apiVersion))
        times = []
        for _ in range(max(1, a.repeat)):
            inv, elapsed, calls = retrieve(si)
            times.append(elapsed)
        print("RetrievePropertiesEx: %d hosts, %d VMs, %d clusters in %s s per round (%d SOAP call(s) per round)"
              % (len(inv["HostSystem"]), len(inv["VirtualMachine"]), len(inv["ClusterComputeResource"]),
                 "/".join("%.2f" % t for t in times), calls))
        c = Checker()
        t0 = time.monotonic()
        stats = check(lab, inv, c)
        print("compared %d values with the lab (%.1fs): %s" % (c.n, time.monotonic() - t0, stats))
        failures += c.errors
        if demo:
            c2 = Checker()
            c2.eq("demo GPU count", stats["gpus"], 18)
            c2.eq("demo vGPU devices", stats["vgpu"], 5)
            c2.eq("demo passthrough devices", stats["passthrough"], 3)
            failures += c2.errors
        # lazy attribute access uses PropertyCollector.Fetch; unset properties must come back as None
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem, vim.VirtualMachine], True)
        first = {type(o).__name__: o for o in reversed(view.view)}
        try:
            h, v = first.get("vim.HostSystem"), first.get("vim.VirtualMachine")
            lazy = (h.capability if h else None, v.snapshot if v else None, h.name if h else None)
            print("lazy Fetch of unset properties (host.capability, vm.snapshot) -> %r, %r: ok" % lazy[:2])
        except Exception as e:  # noqa: BLE001
            failures.append("lazy Fetch of an unset property failed: %r" % e)
        view.DestroyView()
        rss, hwm = g.rss_mb()
        if a.timing:
            print("gpulab RSS after retrieval %.0f MB (peak %.0f MB)" % (rss or 0, hwm or 0))
        Disconnect(si)

        if not a.quick:
            # wrong password
            try:
                connect(g, pwd="wrong")
                failures.append("wrong password: login succeeded")
            except vim.fault.InvalidLogin:
                print("wrong password -> vim.fault.InvalidLogin: ok")
            failures += unauth_check(g)
            # TLS with -cert-out
            failures += tls_checks(a)
            # delay
            failures += delay_check(a, g)
    finally:
        rc = g.stop()
        if rc != 0:
            failures.append("gpulab exit status %s after SIGTERM" % rc)
        else:
            print("gpulab clean shutdown on SIGTERM: exit 0")

    if failures:
        print("\nFAILED (%d):" % len(failures))
        for f in failures[:50]:
            print("  " + f)
        return 1
    print("\nOK")
    return 0


def unauth_check(g):
    """Without a login session only RetrieveServiceContent works (as on a real vCenter)."""
    from pyVmomi import SoapStubAdapter
    stub = SoapStubAdapter(host=g.host, port=g.port, version="vim.version.v7_0_3_0",
                           sslContext=ssl._create_unverified_context())
    content = vim.ServiceInstance("ServiceInstance", stub).RetrieveContent()
    PC = vmodl.query.PropertyCollector
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=content.rootFolder)],
                         propSet=[PC.PropertySpec(type=vim.Folder, pathSet=["name"])])
    try:
        content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        return ["unauthenticated RetrievePropertiesEx succeeded"]
    except vim.fault.NotAuthenticated:
        print("no session: RetrievePropertiesEx -> vim.fault.NotAuthenticated: ok")
    return []


def time_calls(si, n=20):
    t0 = time.monotonic()
    for _ in range(n):
        si.CurrentTime()
    return (time.monotonic() - t0) / n * 1000


def delay_check(a, g0):
    fails = []
    si = connect(g0)
    base = time_calls(si)
    Disconnect(si)
    g = Gpulab(a.gpulab, a.lab, "-delay-ms", "5")
    try:
        si = connect(g)
        slow = time_calls(si)
        Disconnect(si)
    finally:
        g.stop()
    print("CurrentTime(): %.2f ms/call without delay, %.2f ms/call with -delay-ms 5" % (base, slow))
    if slow < base + 4.5:
        fails.append("-delay-ms 5 did not slow calls (%.2f vs %.2f ms)" % (slow, base))
    return fails


def tls_checks(a):
    fails = []
    with tempfile.TemporaryDirectory() as d:
        pem = os.path.join(d, "gpulab.pem")
        g = Gpulab(a.gpulab, a.lab, "-cert-out", pem)
        try:
            # 1. verify against the written cert, hostname check on (127.0.0.1 is an IP SAN)
            for hostname in ("127.0.0.1", "localhost"):
                ctx = ssl.create_default_context(cafile=pem)
                ctx.check_hostname = True
                try:
                    si = SmartConnect(host=hostname, port=g.port, user=USER, pwd=PWD, sslContext=ctx)
                    Disconnect(si)
                    print("TLS verify with cafile=-cert-out, check_hostname=True, host=%s: ok" % hostname)
                except Exception as e:  # noqa: BLE001
                    fails.append("TLS verify (host=%s) failed: %r" % (hostname, e))
            # 2. pyvmomi's serverPemCert pinning
            try:
                with open(pem) as f:
                    si = SmartConnect(host=g.host, port=g.port, user=USER, pwd=PWD, serverPemCert=f.read())
                Disconnect(si)
                print("TLS pinning with SmartConnect(serverPemCert=...): ok")
            except Exception as e:  # noqa: BLE001
                print("TLS pinning with serverPemCert not usable: %r" % e)
            # 3. default trust store must reject the self-signed cert
            try:
                si = SmartConnect(host=g.host, port=g.port, user=USER, pwd=PWD, sslContext=ssl.create_default_context())
                Disconnect(si)
                fails.append("TLS: default trust store accepted the self-signed cert")
            except (ssl.SSLError, vim.fault.HostConnectFault, OSError) as e:
                print("TLS with the default trust store is rejected as expected (%s)" % type(e).__name__)
            # 4. wrong hostname must fail with check_hostname
            ctx = ssl.create_default_context(cafile=pem)
            try:
                with socket.create_connection((g.host, g.port), 5) as s:
                    with ctx.wrap_socket(s, server_hostname="vcenter.example.com"):
                        pass
                fails.append("TLS: hostname vcenter.example.com was accepted")
            except ssl.SSLCertVerificationError:
                print("TLS hostname mismatch (vcenter.example.com) is rejected as expected")
        finally:
            g.stop()
    return fails


if __name__ == "__main__":
    sys.exit(main())

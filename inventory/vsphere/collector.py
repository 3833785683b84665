"""Collect a vCenter's GPU inventory in a handful of SOAP round trips.

One ContainerView over every type we need, one PropertyFilterSpec with explicit property paths, then
``RetrievePropertiesEx`` + ``ContinueRetrievePropertiesEx`` until the token runs out (oslo.vmware's
``WithRetrieval`` pattern). Nothing is read lazily from managed objects: every value comes out of the
ObjectContent pages and is mapped into snapshot dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pyVmomi import vim, vmodl

from inventory.vsphere.mapping import (
    map_cluster,
    map_datacenter,
    map_host,
    map_vm,
    resolve_datacenters,
)
from inventory.vsphere.snapshot import InventorySnapshot

HOST_PROPERTIES = [
    "name",
    "parent",
    "summary.hardware",
    "config.product.apiVersion",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "runtime.bootTime",
    "hardware.pciDevice",
    "hardware.numaInfo",
    "config.graphicsInfo",
    "config.graphicsConfig",
    "config.sharedPassthruGpuTypes",
    "config.pciPassthruInfo",
]
VM_PROPERTIES = [
    "name",
    "runtime.host",
    "runtime.powerState",
    "runtime.bootTime",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.memoryAllocation.reservation",
    "config.hardware.device",
]
COMPUTE_RESOURCE_PROPERTIES = ["name", "parent"]
FOLDER_PROPERTIES = ["parent"]
DATACENTER_PROPERTIES = ["name"]

DEFAULT_PAGE_SIZE = 1000

ProgressFn = Callable[[int], None]


def _filter_spec(view: vim.view.ContainerView) -> vmodl.query.PropertyCollector.FilterSpec:
    PC = vmodl.query.PropertyCollector
    traversal = PC.TraversalSpec(name="traverseView", path="view", skip=False, type=vim.view.ContainerView)
    prop_sets = [
        PC.PropertySpec(type=vim.HostSystem, pathSet=HOST_PROPERTIES, all=False),
        PC.PropertySpec(type=vim.VirtualMachine, pathSet=VM_PROPERTIES, all=False),
        PC.PropertySpec(type=vim.ComputeResource, pathSet=COMPUTE_RESOURCE_PROPERTIES, all=False),
        PC.PropertySpec(type=vim.Folder, pathSet=FOLDER_PROPERTIES, all=False),
        PC.PropertySpec(type=vim.Datacenter, pathSet=DATACENTER_PROPERTIES, all=False),
    ]
    return PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
        propSet=prop_sets,
        reportMissingObjectsInResults=False,
    )


def retrieve_pages(
    collector: Any, spec: Any, *, page_size: int = DEFAULT_PAGE_SIZE
) -> Iterator[list[vmodl.query.PropertyCollector.ObjectContent]]:
    """Yield pages of ObjectContent until no continuation token is left.

    When the caller stops early (an exception, or closing the generator), the server-side result set is
    cancelled so vCenter does not hold it until the session ends.
    """
    options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=page_size)
    result = collector.RetrievePropertiesEx(specSet=[spec], options=options)
    token = None
    try:
        while result is not None:
            token = getattr(result, "token", None)
            yield list(result.objects or [])
            if not token:
                return
            result = collector.ContinueRetrievePropertiesEx(token=token)
            token = None
    finally:
        if token:
            try:
                collector.CancelRetrievePropertiesEx(token=token)
            except Exception:  # noqa: S110 - best effort; the session logout frees it too
                pass


def properties_of(content: vmodl.query.PropertyCollector.ObjectContent) -> dict[str, Any]:
    return {prop.name: prop.val for prop in (content.propSet or [])}


def moref(obj: Any) -> str:
    return obj._moId


def collect(
    si: vim.ServiceInstance, *, page_size: int = DEFAULT_PAGE_SIZE, progress: ProgressFn | None = None
) -> InventorySnapshot:
    content = si.content
    view = content.viewManager.CreateContainerView(
        container=content.rootFolder,
        type=[vim.HostSystem, vim.VirtualMachine, vim.ComputeResource, vim.Folder, vim.Datacenter],
        recursive=True,
    )
    hosts_raw, vms_raw, compute_raw, folders, datacenters = [], [], [], {}, []
    missing: list[str] = []
    received = 0
    try:
        for page in retrieve_pages(content.propertyCollector, _filter_spec(view), page_size=page_size):
            for oc in page:
                props = properties_of(oc)
                for miss in oc.missingSet or []:
                    missing.append(f"{moref(oc.obj)}: property {miss.path} missing ({type(miss.fault).__name__})")
                if isinstance(oc.obj, vim.HostSystem):
                    hosts_raw.append((moref(oc.obj), props))
                elif isinstance(oc.obj, vim.VirtualMachine):
                    vms_raw.append((moref(oc.obj), props))
                elif isinstance(oc.obj, vim.ComputeResource):
                    compute_raw.append((moref(oc.obj), isinstance(oc.obj, vim.ClusterComputeResource), props))
                elif isinstance(oc.obj, vim.Folder):
                    parent = props.get("parent")
                    folders[moref(oc.obj)] = moref(parent) if parent is not None else None
                elif isinstance(oc.obj, vim.Datacenter):
                    datacenters.append((moref(oc.obj), props))
            received += len(page)
            if progress is not None:
                progress(received)
    finally:
        try:
            view.DestroyView()
        except Exception:  # noqa: S110 - the session logout destroys it too
            pass

    snapshot = InventorySnapshot(
        api_version=content.about.apiVersion, instance_uuid=str(content.about.instanceUuid or ""), warnings=missing
    )
    snapshot.datacenters = [map_datacenter(ref, props) for ref, props in datacenters]
    dc_refs = {dc.moref for dc in snapshot.datacenters}
    clusters = {ref for ref, is_cluster, _ in compute_raw if is_cluster}
    parents = dict(folders)
    parents.update({ref: (moref(p["parent"]) if p.get("parent") is not None else None) for ref, _, p in compute_raw})
    dc_of = resolve_datacenters(parents, dc_refs)
    snapshot.clusters = [
        map_cluster(ref, props, dc_of.get(ref)) for ref, is_cluster, props in compute_raw if is_cluster
    ]
    snapshot.hosts = [map_host(ref, props, clusters) for ref, props in hosts_raw]
    snapshot.vms = [map_vm(ref, props) for ref, props in vms_raw]
    return snapshot

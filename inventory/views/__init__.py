"""Inventory pages: overview, clusters, hosts, syncs and vCenters (one module each)."""

from inventory.views.health import healthz
from inventory.views.hosts import host_detail, host_import_smi, host_topology_svg
from inventory.views.overview import cluster_detail, cluster_list, overview
from inventory.views.syncs import sync_list, sync_run, sync_start
from inventory.views.vcenters import (
    vcenter_accept_identity,
    vcenter_create,
    vcenter_delete,
    vcenter_edit,
    vcenter_list,
    vcenter_test,
)

home = overview  # the name config/urls.py and LOGIN_REDIRECT_URL use

__all__ = [
    "cluster_detail",
    "cluster_list",
    "healthz",
    "home",
    "host_detail",
    "host_import_smi",
    "host_topology_svg",
    "overview",
    "sync_list",
    "sync_run",
    "sync_start",
    "vcenter_accept_identity",
    "vcenter_create",
    "vcenter_delete",
    "vcenter_edit",
    "vcenter_list",
    "vcenter_test",
]

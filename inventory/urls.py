"""Inventory page routes, mounted at the site root by config/urls.py (namespace ``inventory``)."""

from django.urls import path

from inventory import views
from inventory.views import lists

app_name = "inventory"
urlpatterns = [
    path("clusters/", views.cluster_list, name="clusters"),
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster_detail"),
    path("inventory/hosts/", lists.host_list, name="hosts"),
    path("inventory/gpus/", lists.gpu_list, name="gpus"),
    path("inventory/hosts/<int:pk>/", views.host_detail, name="host_detail"),
    path("inventory/hosts/<int:pk>/smi/", views.host_import_smi, name="host_import_smi"),
    path("inventory/hosts/<int:pk>/topology.svg", views.host_topology_svg, name="host_topology_svg"),
    path("syncs/", views.sync_list, name="syncs"),
    path("syncs/start/", views.sync_start, name="sync_start"),
    path("syncs/<int:pk>/", views.sync_run, name="sync_run"),
    path("vcenters/", views.vcenter_list, name="vcenters"),
    path("vcenters/add/", views.vcenter_create, name="vcenter_add"),
    path("vcenters/<int:pk>/edit/", views.vcenter_edit, name="vcenter_edit"),
    path("vcenters/<int:pk>/test/", views.vcenter_test, name="vcenter_test"),
    path("vcenters/<int:pk>/accept-identity/", views.vcenter_accept_identity, name="vcenter_accept_identity"),
    path("vcenters/<int:pk>/delete/", views.vcenter_delete, name="vcenter_delete"),
]

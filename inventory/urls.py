from django.urls import path

from inventory import views

app_name = "inventory"
urlpatterns = [
    path("hosts/<int:pk>/smi/", views.host_import_smi, name="host_import_smi"),
    path("hosts/<int:pk>/", views.host_detail, name="host_detail"),
    path("hosts/<int:pk>/topology.svg", views.host_topology_svg, name="host_topology_svg"),
]

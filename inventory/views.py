from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from inventory import fabric, selectors
from inventory.models import GpuConsumer, Host
from inventory.topology.svg import render_host_svg


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "inventory/home.html",
        {
            "summary": selectors.inventory_summary(),
            "vcenters": selectors.vcenter_list(),
            "hosts": selectors.host_list(),
            "sync_runs": selectors.recent_sync_runs(),
        },
    )


def host_detail(request: HttpRequest, pk: int, *, extra: dict | None = None, status: int = 200) -> HttpResponse:
    host = get_object_or_404(Host.objects.select_related("cluster", "vcenter"), pk=pk)
    context = {"host": host, "gpus": selectors.gpu_list(host=host), "fabric": fabric.stored_fabric(host)}
    return render(request, "inventory/host_detail.html", {**context, **(extra or {})}, status=status)


@require_POST
def host_import_smi(request: HttpRequest, pk: int) -> HttpResponse:
    """Paste an nvidia-smi capture for a host; errors re-render the page with the line named, nothing stored."""
    host = get_object_or_404(Host, pk=pk)
    text = request.POST.get("text", "")
    query_csv = request.POST.get("query_csv", "").strip() or None
    try:
        fabric.import_smi_capture(host=host, text=text, query_csv=query_csv)
    except fabric.TopologyImportError as exc:
        extra = {"smi_error": str(exc), "smi_text": text, "smi_csv": query_csv or ""}
        return host_detail(request, pk, extra=extra, status=400)
    messages.success(request, "Capture imported: the fabric was rebuilt from it.")
    return redirect("inventory:host_detail", pk=pk)


def host_topology_svg(request: HttpRequest, pk: int) -> HttpResponse:
    """The host's GPU fabric drawn as SVG: PCIe tree, NUMA nodes, NVLink/NVSwitch, GPUs with their VMs."""
    host = get_object_or_404(Host, pk=pk)
    result, hw = fabric.current_fabric(host)
    occupancy: dict[str, list[str]] = {}
    for pci_id, vm in (
        GpuConsumer.objects.filter(gpu__host=host, gpu__stale=False)
        .order_by("vm__name")
        .values_list("gpu__pci_device__pci_id", "vm__name")
    ):
        occupancy.setdefault(pci_id, []).append(vm)
    svg = render_host_svg(result, hw, occupancy={k: ", ".join(v) for k, v in occupancy.items()})
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{host.name}-topology.svg"'
    return response


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})

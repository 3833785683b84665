"""A host: its GPU fabric drawing, GPUs (mode, profile lock, consumers, reservations), domains, NUMA, findings,
and the ``nvidia-smi topo -m`` paste form (planner role) that answers inline through htmx."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST, require_safe

from inventory import fabric, occupancy
from inventory.downloads import host_svg, svg_disposition
from inventory.forms import SMI_MAX_BYTES, SmiCaptureForm
from inventory.models import Host, NumaNode, SmiCapture
from inventory.roles import PLANNER, role_required


def _host_context(host: Host) -> dict:
    gpus = occupancy.host_gpu_details(host=host)
    stored = fabric.stored_fabric(host)
    domains_of: dict[str, list[dict]] = {}
    for domain in stored["domains"]:
        if domain["active"]:
            for pci in domain["gpus"]:
                domains_of.setdefault(pci, []).append(domain)
    for gpu in gpus:  # smallest groups first: a pair or a switch says more about a GPU than the whole board
        mine = [d for d in domains_of.get(gpu.pci_id, []) if len(d["gpus"]) > 1 and d["kind"] != "numa-node"]
        gpu.domains = sorted(mine, key=lambda d: (len(d["gpus"]), d["kind"], d["name"]))
    numa = []
    for node in NumaNode.objects.filter(host=host).order_by("node_id"):
        numa.append(
            {
                "node": node,
                "cpus": len(node.cpu_ids or ()),
                "gpus": [g for g in gpus if g.numa_node == node.node_id],
            }
        )
    latest = SmiCapture.objects.filter(host=host).order_by("-imported_at", "-id").first()
    return {
        "host": host,
        "gpus": gpus,
        "summary": occupancy.summarize(gpus),
        "fabric": stored,
        "numa": numa,
        "latest_capture": latest,
        "smi_max_bytes": SMI_MAX_BYTES,
        "svg": mark_safe(host_svg(host, gpus)),  # noqa: S308 - our own renderer escapes every text it draws
    }


def _get_host(pk: int) -> Host:
    return get_object_or_404(Host.objects.select_related("cluster", "vcenter"), pk=pk)


@require_safe
def host_detail(request: HttpRequest, pk: int) -> HttpResponse:
    host = _get_host(pk)
    context = {**_host_context(host), "smi_form": SmiCaptureForm()}
    return render(request, "inventory/host_detail.html", context)


def _too_large(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > SMI_MAX_BYTES + 16 * 1024  # the form's own overhead is small


@require_POST
@role_required(PLANNER)
def host_import_smi(request: HttpRequest, pk: int) -> HttpResponse:
    """Import a pasted capture. htmx gets the fabric partial back (the error names the line and keeps the
    text, status 400; 413 above 256 KiB); without JavaScript, a redirect or the page with the error."""
    host = _get_host(pk)
    htmx = getattr(request, "htmx", None)
    template = "inventory/host_detail.html#fabric" if htmx else "inventory/host_detail.html"
    if _too_large(request):
        form = SmiCaptureForm()
        error = f"The paste is larger than {SMI_MAX_BYTES // 1024} KiB; an nvidia-smi capture is a few KiB."
        context = {**_host_context(host), "smi_form": form, "smi_error": error}
        return render(request, template, context, status=413)
    form = SmiCaptureForm(request.POST)
    if form.is_valid():
        text, csv = form.cleaned_data["text"], form.cleaned_data["query_csv"] or None
        if len(text.encode()) + len((csv or "").encode()) > SMI_MAX_BYTES:
            error = f"The paste is larger than {SMI_MAX_BYTES // 1024} KiB; an nvidia-smi capture is a few KiB."
            context = {**_host_context(host), "smi_form": form, "smi_error": error}
            return render(request, template, context, status=413)
        try:
            capture, _ = fabric.import_smi_capture(host=host, text=text, query_csv=csv)
        except fabric.TopologyImportError as exc:
            error = {"message": str(exc), "line": exc.line, "part": exc.part}
            context = {**_host_context(host), "smi_form": form, "smi_error": error}
            return render(request, template, context, status=400)
        notice = f"Capture imported ({capture.gpu_count} GPUs): the fabric was rebuilt from it."
        if htmx:
            host.refresh_from_db()
            context = {**_host_context(host), "smi_form": SmiCaptureForm(), "smi_notice": notice}
            return render(request, template, context)
        messages.success(request, notice)
        return redirect("inventory:host_detail", pk=pk)
    context = {**_host_context(host), "smi_form": form}
    return render(request, template, context, status=400)


@require_safe
def host_topology_svg(request: HttpRequest, pk: int) -> HttpResponse:
    """The host's GPU fabric drawn as SVG: PCIe tree, NUMA nodes, NVLink/NVSwitch, GPUs with their VMs."""
    host = get_object_or_404(Host, pk=pk)
    response = HttpResponse(host_svg(host), content_type="image/svg+xml; charset=utf-8")
    response["Content-Disposition"] = svg_disposition(host)
    return response

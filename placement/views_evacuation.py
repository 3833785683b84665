"""A host's evacuation page: where its GPU VMs would go if it left (maintenance mode, decommissioning). The
same joint plan as ``GET /api/hosts/{id}/evacuation/`` and ``manage.py plan --evacuate``; nothing is reserved."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from inventory.models import Host
from placement import services
from placement.api.evacuation import entry_label, evacuation_document
from placement.engine.request import RequestError


@require_safe
def host_evacuation(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host.objects.select_related("vcenter", "cluster"), pk=pk)
    plan, error = None, ""
    try:
        plan = evacuation_document(services.plan_host_evacuation(host=host), host)
    except RequestError as exc:
        error = exc.message
    for entry in plan["moves"] if plan else ():
        entry["label"] = entry_label(entry)
    moved = sum(1 for m in plan["moves"] if m["target"]) if plan else 0
    return render(
        request,
        "placement/evacuation.html",
        {"host": host, "plan": plan, "error": error, "moved": moved},
        status=409 if error else 200,
    )

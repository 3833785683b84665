from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from inventory import selectors
from inventory.models import Host


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


def host_detail(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host.objects.select_related("cluster", "vcenter"), pk=pk)
    return render(request, "inventory/host_detail.html", {"host": host, "gpus": selectors.gpu_list(host=host)})


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})

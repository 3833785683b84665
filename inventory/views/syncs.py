"""Syncs: start a sync of a vCenter (admin role), watch it with htmx polling, read the history.

The run partial polls itself every second while the run is queued or running; once it is finished the
server answers HTTP 286, which makes htmx swap the final state in and stop polling. On the run's own page the
whole run section polls (card, facts and counts), so the finished values show without a reload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from inventory import services, tasks
from inventory.forms import SyncStartForm, syncs_run_on_schedule
from inventory.models import FINISHED_SYNC_STATUSES, PENDING_SYNC_STATUSES, SyncRun, SyncStatus
from inventory.roles import ADMIN, role_required
from inventory.tables import BoundedRequestConfig, SyncRunTable, count_summary, count_table, sort_problem
from inventory.views.common import filter_problems, page_filterset, page_or_partial

if TYPE_CHECKING:
    from inventory.filtersets import SyncRunFilterSet

FINISHED = FINISHED_SYNC_STATUSES
HTMX_STOP_POLLING = 286
FINISHED_EVENT = "sync-finished"


def is_finished(run: SyncRun) -> bool:
    return run.status in FINISHED


def _no_worker(runs: list[SyncRun]) -> bool:
    """Whether a queued run among ``runs`` waits with no worker answering (asked only when one is queued)."""
    from inventory.views.health import no_worker_answers

    return any(r.status == SyncStatus.QUEUED for r in runs) and no_worker_answers()


def _run_context(run: SyncRun) -> dict:
    return {
        "run": run,
        "finished": is_finished(run),
        "summary": count_summary(run.counts or {}),
        "no_worker": _no_worker([run]),
    }


def _history(request: HttpRequest) -> tuple[SyncRunTable, SyncRunFilterSet, bool]:
    from inventory.filtersets import SyncRunFilterSet

    runs = SyncRun.objects.select_related("vcenter")
    filterset = page_filterset(SyncRunFilterSet(request.GET or None, queryset=runs, request=request))
    valid = not filterset.is_bound or filterset.is_valid()
    problems = filter_problems(filterset) if not valid else []
    if sorting := sort_problem(SyncRunTable(runs.none()), request):
        problems.append(sorting)
        valid = False
    table = SyncRunTable(filterset.qs if valid else runs.none(), order_by="-created")
    if not valid:
        table.empty_text = f"The filter is not valid ({'; '.join(problems)})."
    BoundedRequestConfig(request, paginate={"per_page": 25}).configure(table)
    return table, filterset, valid


@require_safe
def sync_list(request: HttpRequest) -> HttpResponse:
    services.reap_before_reading()
    table, filterset, valid = _history(request)
    active = list(
        SyncRun.objects.filter(status__in=PENDING_SYNC_STATUSES).select_related("vcenter").order_by("-created")[:10]
    )
    context = {
        "table": table,
        "filter": filterset,
        "active": active,
        "start_form": SyncStartForm(),
        "no_worker": _no_worker(active),
        "scheduled": syncs_run_on_schedule(),
    }
    return page_or_partial(
        request, "inventory/syncs/list.html", context, partials={"syncs-table": "history"}, status=200 if valid else 400
    )


@require_POST
@role_required(ADMIN)
def sync_start(request: HttpRequest) -> HttpResponse:
    form = SyncStartForm(request.POST)
    htmx = getattr(request, "htmx", None)
    if not form.is_valid():
        if htmx:
            response = render(request, "inventory/syncs/list.html#start-form", {"start_form": form}, status=400)
            response["HX-Retarget"] = "#start-form"
            response["HX-Reswap"] = "outerHTML"
            return response
        table, filterset, _ = _history(request)
        context = {"table": table, "filter": filterset, "active": [], "start_form": form}
        return render(request, "inventory/syncs/list.html", context, status=400)
    vcenter = form.cleaned_data["vcenter"]
    run = tasks.enqueue_sync(vcenter=vcenter, trigger=SyncRun.Trigger.MANUAL)
    run.refresh_from_db()  # eager: the task already ran, show its outcome
    if htmx:
        response = render(request, "inventory/syncs/_run.html", _run_context(run))
        if is_finished(run):
            response["HX-Trigger"] = FINISHED_EVENT
        return response
    text = f"Sync #{run.pk} of {run.vcenter.name}: {run.get_status_display().lower()}"
    if run.status in FINISHED and run.error:
        text += f" ({run.error})"
    level = (
        messages.SUCCESS
        if run.status in (SyncStatus.QUEUED, SyncStatus.RUNNING, SyncStatus.SUCCESS)
        else messages.WARNING
    )
    messages.add_message(request, level, f"{text}.")
    return redirect("inventory:sync_run", pk=run.pk)


@require_safe
def sync_run(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: the polled partial for htmx (286 once finished), the detail page otherwise."""
    services.reap_before_reading()
    run = get_object_or_404(SyncRun.objects.select_related("vcenter"), pk=pk)
    context = _run_context(run)
    finished = context["finished"]
    # The detail page polls for its whole run section (?detail=1: card, facts and counts); the list for the card.
    detail = not getattr(request, "htmx", None) or request.GET.get("detail") == "1"
    if detail:
        headers, rows = count_table(run.counts or {})
        context.update(count_headers=headers, count_rows=rows)
    if getattr(request, "htmx", None):
        template = "inventory/syncs/_run_detail.html" if detail else "inventory/syncs/_run.html"
        response = render(request, template, context, status=HTMX_STOP_POLLING if finished else 200)
        if finished:
            response["HX-Trigger"] = FINISHED_EVENT
        return response
    return render(request, "inventory/syncs/detail.html", context)

"""Placement pages: the plan form with live results, the sizing helper, reserving, and the reservation pages.

Every view is a thin layer over ``placement.services`` (planning, accepting, releasing) and the engine's
sizing function; nothing is stored unless a planner reserves, and the reservation itself is written by
``services.accept_candidate`` / ``services.reserve`` under their lock.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from inventory.api.permissions import ReservationOwnerOrAdmin, may_change_owned
from inventory.models import Gpu, Host
from inventory.roles import PLANNER, forbidden, has_role, role_required
from inventory.tables import BoundedRequestConfig, sort_problem
from inventory.views.common import filter_problems, page_filterset
from placement import selectors, services
from placement.engine.request import PlacementRequest, RequestError
from placement.engine.result import Candidate, Plan, candidate_link_text
from placement.engine.sizing import Sizing, size_inference
from placement.forms import REQUEST_FIELDS, PlanForm, ReserveForm, SizingForm
from placement.handout import reservation_handout
from placement.models import Reservation
from placement.reservation_health import SCRIPT_OUT_OF_DATE
from placement.selectors import reservations_with_status
from placement.tables import ReservationPageFilterSet, ReservationTable
from placement.validators import TTL_MAX_MINUTES, VM_NAME_MAX

SHOWN_CANDIDATES = 10  # the rest are counted, not drawn: a 1,000-host cluster would otherwise render 1,000 cards
TOP_REASONS = 3
# hosts listed under one rejection reason; the rest are counted (a plan over 2,000 hosts listed every one: 0.5 MB)
SHOWN_REJECTED_HOSTS = 20
COMPARISON_PREFIXES = ("beats ", "ranks below ", "ties with ")
PCI_RE = re.compile(r"\b[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b")
RESERVE_LIMITS = {"vm_name_max": VM_NAME_MAX, "ttl_max_minutes": TTL_MAX_MINUTES}  # the "Reserve as" inputs
ERROR_FIELDS = (*REQUEST_FIELDS, "vm_name", "ttl_minutes")  # fields whose messages the results swap in (oob)
GENERALIZE = (  # host-specific numbers out of the host-level reasons (engine/filters.py wording)
    (re.compile(r"^host has \d+ GPUs?, the VM needs (\d+)$"), r"host has fewer than \1 GPUs"),
    (re.compile(r"^no (\S+) GPUs \(host has .*\)$"), r"no \1 GPUs"),
    (re.compile(r"^host has \d+ free vCPUs, the VM needs (\d+)$"), r"host has fewer than \1 free vCPUs"),
    (
        re.compile(r"^host has \d+ GiB unreserved memory, the VM needs a full (\d+) GiB reservation$"),
        r"host has less than \1 GiB unreserved memory (full reservation)",
    ),
)
NEEDS_RE = re.compile(r"^needs \d+ eligible GPUs?, \d+ of \d+ (?:is|are)$")


# ---------------------------------------------------------------- plan page


@require_http_methods(["GET", "POST"])
def plan(request: HttpRequest) -> HttpResponse:
    """The request form and its ranked results; htmx posts get only the results (or the form and results)."""
    if request.method == "POST":
        form = PlanForm(request.POST)
    elif any(name in request.GET for name in REQUEST_FIELDS):
        # a shared link, or the sizing helper's "Use this": fields it leaves out keep their defaults
        data = request.GET.copy()
        for name, field in PlanForm.base_fields.items():
            if name not in data and field.initial is not None:
                data[name] = str(field.initial)
        form = PlanForm(data)
    else:
        form = PlanForm()
    response = _render_plan(request, form)
    if request.method == "POST" and request.htmx:
        # The address follows the request: reload, Back and a bookmark bring the same plan back (the GET above
        # renders it). Only the request's fields go there; never the CSRF token, nor the VM name and hold, so
        # reloading never repeats a reservation.
        response["HX-Push-Url"] = plan_url(request.POST)
    return response


def plan_url(data) -> str:
    """The plan page's address for the request fields of ``data`` (a QueryDict), empty values left out."""
    pairs = [(name, value) for name in REQUEST_FIELDS for value in data.getlist(name) if value.strip()]
    url = reverse("placement:plan")
    return f"{url}?{urlencode(pairs)}" if pairs else url


@require_POST
@role_required(PLANNER)
def reserve(request: HttpRequest) -> HttpResponse:
    """Re-plan the posted request, find the chosen candidate again and reserve it (all replicas for vms > 1)."""
    form = ReserveForm(request.POST)
    if not form.is_valid():
        return _render_plan(request, form, status=400)
    data = form.cleaned_data
    placement_request: PlacementRequest = data["request"]
    try:
        if placement_request.vms > 1:
            reservations = services.reserve(
                request=placement_request, vm_name=data["vm_name"], ttl_minutes=data.get("ttl_minutes"),
                user=request.user,
            )  # fmt: skip
        elif data.get("host_id"):
            reservations = [
                services.reserve_planned(
                    request=placement_request, host_id=data["host_id"], pci_ids=form.pci_id_list,
                    vm_name=data["vm_name"], ttl_minutes=data.get("ttl_minutes"), user=request.user,
                )
            ]  # fmt: skip
        else:
            reservations = [_reserve_by_name(placement_request, form, request.user)]
    except RequestError as exc:
        form.add_request_error(exc)
        return _render_plan(request, form, status=400)
    except services.ReservationConflict as exc:
        return _render_plan(request, PlanForm(request.POST), conflict=str(exc), status=409)
    if len(reservations) == 1:
        url = reverse("placement:reservation_detail", args=[reservations[0].pk])
    else:
        url = reverse("placement:reservation_list") + "?" + urlencode({"vm_name": data["vm_name"]})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _reserve_by_name(request: PlacementRequest, form: ReserveForm, user) -> Reservation:
    """A form that names its host without the inventory's id (drawn by an older page): the re-planned candidate on
    the host of that name and vCenter with the same GPUs."""
    data = form.cleaned_data
    chosen = _find_candidate(services.plan_cluster(request=request).candidates, form)
    if chosen is None:
        raise services.CandidateChanged(
            f"{data['host']} no longer offers GPUs {', '.join(form.pci_id_list)} for this request (another plan or "
            "VM took them, or the inventory changed): choose from the refreshed results"
        )
    return services.accept_candidate(
        request=request, candidate=chosen, vm_name=data["vm_name"], ttl_minutes=data.get("ttl_minutes"), user=user
    )


def _find_candidate(candidates: tuple[Candidate, ...], form: ReserveForm) -> Candidate | None:
    """The re-planned candidate on the host of the form's name and vCenter with the same GPUs (a form without the
    host's id; one with it goes through ``services.reserve_planned``)."""
    data = form.cleaned_data
    for c in candidates:
        same_host = c.host == data["host"] and (not data.get("vcenter") or c.vcenter in ("", data["vcenter"]))
        if same_host and sorted(g.pci_id for g in c.gpus) == form.pci_id_list:
            return c
    return None


def _render_plan(request: HttpRequest, form: PlanForm, *, conflict: str = "", status: int = 200) -> HttpResponse:
    context: dict = {"form": form, "conflict": conflict, "sizing_form": SizingForm(), **RESERVE_LIMITS}
    if form.is_bound:
        valid = form.is_valid()
        placement_request = form.cleaned_data.get("request")  # also when only vm_name/ttl_minutes failed
        if placement_request is not None:
            try:
                result = services.plan_cluster(request=placement_request)
            except RequestError as exc:  # e.g. a cluster removed since the form was drawn
                form.add_request_error(exc)
                valid = False
            else:
                context.update(plan_context(result, placement_request, form))
        if not valid:
            status = max(status, 400)
    errors = form.errors if form.is_bound else {}
    context["field_errors"] = [(name, "; ".join(errors.get(name, []))) for name in ERROR_FIELDS]
    context["form_errors"] = list(errors.get("__all__", []))
    context["plan_status"] = _plan_status(form, context, errors)
    if request.htmx and not request.htmx.history_restore_request:  # a restore from history wants the whole page
        target = request.htmx.target or ""
        partial = "planner" if target == "planner" else "results"
        context["oob_errors"] = partial == "results"
        return render(request, f"placement/plan.html#{partial}", context, status=status)
    return render(request, "placement/plan.html", context, status=status)


RESERVE_LABELS = {"vm_name": "VM name", "ttl_minutes": "Hold for (minutes)"}


def _plan_status(form: PlanForm, context: dict, errors) -> str:
    """One line a screen reader announces for an answer of the plan page (the results region itself is long, and
    is redrawn as the user types): what is wrong with the request, or how many hosts fit and which is best."""
    if context.get("conflict"):
        return f"Not reserved: {context['conflict']}"
    wrong = [
        str(form.fields[name].label) if name in form.fields else RESERVE_LABELS.get(name, name)
        for name in ERROR_FIELDS
        if errors.get(name)
    ]
    if wrong or context["form_errors"]:
        return "Fix the request: " + (", ".join(wrong) if wrong else " ".join(context["form_errors"]))
    if not context.get("planned"):
        return ""
    count = context["candidate_count"]
    if not count:
        return "No host fits this request."
    best = context["candidates"][0]
    return f"{count} candidate host{'' if count == 1 else 's'}; the best is {best['host']}."


def plan_context(result: Plan, request: PlacementRequest, form: PlanForm) -> dict:
    """What the results partial shows: candidates, the joint assignment, and rejections grouped by reason."""
    hosts = _host_index(result)
    candidates = [_candidate_view(c, rank, hosts) for rank, c in enumerate(result.candidates[:SHOWN_CANDIDATES], 1)]
    groups = group_rejections(result, hosts)
    return {
        "planned": True,
        "plan_request": request,
        "request_fields": _request_hidden_fields(form),
        "candidates": candidates,
        "more_candidates": max(0, len(result.candidates) - SHOWN_CANDIDATES),
        "candidate_count": len(result.candidates),
        "assignment": [_candidate_view(c, c.vm_index + 1, hosts) for c in result.assignment],
        "unplaced": list(result.unplaced),
        "complete": request.vms == 1 or len(result.assignment) == request.vms,
        "rejected_count": len(result.rejected),
        "rejection_groups": groups,
        "top_reasons": groups[:TOP_REASONS],
    }


def _request_hidden_fields(form: PlanForm) -> list[tuple[str, str]]:
    """The request as (name, value) pairs, for the Reserve buttons to post back exactly what was planned."""
    pairs: list[tuple[str, str]] = []
    for name in REQUEST_FIELDS:
        value = form.cleaned_data.get(name)
        if name == "clusters":
            pairs.extend(("clusters", c) for c in value or [])
        elif name == "anti_affinity":
            if value:
                pairs.append((name, "on"))
        elif value not in (None, ""):
            pairs.append((name, str(value)))
    return pairs


def _host_index(result: Plan) -> dict[str, list[dict]]:
    """Host name -> inventory rows, for results made before candidates carried ``host_id``/``vcenter``."""
    outcomes = [*result.candidates[:SHOWN_CANDIDATES], *result.assignment, *result.rejected]
    if all(getattr(o, "host_id", None) is not None for o in outcomes):
        return {}
    names = {o.host for o in outcomes}
    index: dict[str, list[dict]] = {}
    for row in Host.objects.filter(name__in=names, stale=False).values("pk", "name", "vcenter__name"):
        index.setdefault(row["name"], []).append({"id": row["pk"], "vcenter": row["vcenter__name"]})
    return index


def _identity(outcome, hosts: dict[str, list[dict]]) -> tuple[int | None, str]:
    host_id = getattr(outcome, "host_id", None)
    vcenter = getattr(outcome, "vcenter", "") or ""
    if host_id is None:
        rows = hosts.get(outcome.host, [])
        if vcenter:
            rows = [r for r in rows if r["vcenter"] == vcenter]
        if len(rows) == 1:  # a name in several vCenters stays unlinked rather than pointing at the wrong host
            host_id, vcenter = rows[0]["id"], rows[0]["vcenter"]
    return host_id, vcenter


def _candidate_view(c: Candidate, rank: int, hosts: dict[str, list[dict]]) -> dict:
    host_id, vcenter = _identity(c, hosts)
    lines = list(c.explanation)
    comparison = [line for line in lines if line.startswith(COMPARISON_PREFIXES)]
    return {
        "rank": rank,
        "host": c.host,
        "host_id": host_id,
        "vcenter": vcenter,
        "gpus": [
            {
                "pci_id": g.pci_id,
                "index": g.index,
                "profile": g.profile,
                "placement_gb": g.placement_gb,
                "mig_slot": g.mig_slot,
            }
            for g in c.gpus
        ],
        "pci_ids": ",".join(sorted(g.pci_id for g in c.gpus)),
        "bottleneck_label": c.bottleneck[0],
        "bottleneck_gbps": c.bottleneck[1],
        "link": candidate_link_text(*c.bottleneck),
        "numa_nodes": list(c.numa_nodes),
        "explanation": [line for line in lines if line not in comparison],
        "comparison": comparison,
        "score": c.score,
    }


def reason_group(reason: str) -> str:
    """A rejection reason without its per-host particulars, so hosts failing the same way group together."""
    text = re.sub(r", e\.g\. .*$", "", reason)
    text = re.sub(r"^\d+ of \d+ GPUs ", "GPUs ", text)
    for pattern, replacement in GENERALIZE:
        text = pattern.sub(replacement, text)
    return PCI_RE.sub("…", text)


def group_rejections(result: Plan, hosts: dict[str, list[dict]]) -> list[dict]:
    """Rejected hosts grouped by reason, most hosts first; a host with several reasons is in each group."""
    groups: dict[str, list[dict]] = {}
    said: dict[str, set[str]] = {}  # the hosts' own wording of each group's reason
    for rejection in result.rejected:
        host_id, vcenter = _identity(rejection, hosts)
        entry = {"host": rejection.host, "host_id": host_id, "vcenter": vcenter, "reasons": list(rejection.reasons)}
        specific = [r for r in rejection.reasons if not NEEDS_RE.match(r)] or list(rejection.reasons)
        for reason in specific:
            key = reason_group(reason)
            said.setdefault(key, set()).add(reason)
            if not groups.get(key) or groups[key][-1] is not entry:
                groups.setdefault(key, []).append(entry)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    # A reason every host of its group words alike (one host, say) keeps its particulars: GPU, VM, counts.
    return [
        {
            "reason": next(iter(said[key])) if len(said[key]) == 1 else key,
            "count": len(entries),
            "hosts": entries,
            "shown": entries[:SHOWN_REJECTED_HOSTS],
            "more": max(0, len(entries) - SHOWN_REJECTED_HOSTS),
        }
        for key, entries in ordered
    ]


# ---------------------------------------------------------------- sizing helper


@require_http_methods(["GET", "POST"])
def sizing(request: HttpRequest) -> HttpResponse:
    """Model parameters -> memory terms and a GPU count/profile per board (``engine.sizing.size_inference``)."""
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = SizingForm(data)
    context: dict = {"sizing_form": form}
    status = 200
    if form.is_bound and form.is_valid():
        d = form.cleaned_data
        try:
            result = size_inference(
                d["params_b"], d["precision"], d["layers"], d["kv_heads"], d["head_dim"], d["context"], d["seqs"],
                kv_bytes=d["kv_precision"], overhead_frac=d["overhead"],
                inventory=selectors.sizing_inventory(),
            )  # fmt: skip
        except ValueError as exc:  # the engine names the parameter
            name = str(exc).split(" ", 1)[0]
            field = {"context_len": "context", "concurrent_seqs": "seqs", "bytes_per_param": "precision",
                     "kv_bytes": "kv_precision", "overhead_frac": "overhead"}.get(name, name)  # fmt: skip
            form.add_error(field if field in form.fields else None, str(exc))
            status = 400
        else:
            context["sizing"] = result
            context["proposals"] = sizing_proposals(result)
    elif form.is_bound:
        status = 400
    if request.htmx:
        return render(request, "placement/plan.html#sizing-results", context, status=status)
    return render(request, "placement/plan.html", {**context, "form": PlanForm(), **RESERVE_LIMITS}, status=status)


def sizing_proposals(result: Sizing) -> list[dict]:
    """Each board's proposal with the plan-form values that ask for it (inventory boards first)."""
    present = set(
        Gpu.objects.filter(stale=False).exclude(board="").order_by().values_list("board", flat=True).distinct()
    )
    most = _most_per_host()
    out = []
    for p in result.proposals:
        uses = []
        if p.gpus and p.board in present:  # another board would only be refused by the form
            # the engine words and spells each proposal by what the inventory's GPUs of the board offer: no
            # passthrough on NVSwitch boards, a device group only where one NVLink domain joins that many GPUs
            if p.passthrough:
                uses.append({"label": f"{p.gpus} x passthrough", "params": {"gpus_per_vm": p.gpus, "board": p.board}})
            if p.profile:
                # several vGPUs of one VM keep NVLink only as a device group; added one by one they get none
                uses.append({
                    "label": f"{p.gpus} x {p.profile}{' (device group)' if p.device_group else ''}",
                    "params": {"gpus_per_vm": p.gpus, "consumption": "device-group" if p.device_group else "vgpu",
                               "profile": p.profile, "board": p.board},
                })  # fmt: skip
        for use in uses:
            use["query"] = urlencode(use["params"])
        out.append({"board": p.board, "gpus": p.gpus, "profile": p.profile, "explain": p.explain,
                    "in_inventory": p.board in present, "uses": uses,
                    "too_many": p.board in present and p.gpus > most.get(p.board, 0),
                    "most_per_host": most.get(p.board, 0)})  # fmt: skip
    out.sort(key=lambda x: (not x["in_inventory"], x["gpus"] == 0, x["board"]))
    return out


def _most_per_host() -> dict[str, int]:
    """Per board, the most GPUs of it one host of the inventory has."""
    most: dict[str, int] = {}
    rows = Gpu.objects.filter(stale=False).exclude(board="").values("board", "host").annotate(n=Count("pk"))
    for row in rows.order_by():
        most[row["board"]] = max(most.get(row["board"], 0), row["n"])
    return most


# ---------------------------------------------------------------- reservations


@require_safe
def reservation_list(request: HttpRequest) -> HttpResponse:
    reservations = reservations_with_status()
    filterset = page_filterset(ReservationPageFilterSet(request.GET or None, queryset=reservations))
    # A value the filter cannot use (an unknown status, a sort by no column) is a 400 that says so, as on the
    # cluster page, rather than a list of every reservation.
    valid = not filterset.is_bound or filterset.is_valid()
    problems = filter_problems(filterset) if not valid else []
    if sorting := sort_problem(ReservationTable(reservations.none()), request):
        problems.append(sorting)
        valid = False
    table = ReservationTable(filterset.qs if valid else reservations.none())
    if not valid:
        table.empty_text = f"The filter is not valid ({'; '.join(problems)})."
    BoundedRequestConfig(request, paginate={"per_page": 50}).configure(table)
    context = {"filter": filterset, "table": table}
    status = 200 if valid else 400
    if request.htmx and not request.htmx.history_restore_request:  # Back/Forward restores ask for the whole page
        return render(request, "placement/reservation_list.html#reservation-table", context, status=status)
    return render(request, "placement/reservation_list.html", context, status=status)


@require_safe
def reservation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = get_object_or_404(
        reservations_with_status().select_related("host__vcenter", "host__cluster", "vcenter", "created_by"), pk=pk
    )
    h = reservation_handout(reservation)
    fmt = request.GET.get("format", "")
    if fmt == "json":
        response = JsonResponse(h.document, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="reservation-{reservation.pk}.json"'
        return response
    if fmt == "powercli":
        response = HttpResponse(h.powercli, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="reservation-{reservation.pk}.ps1"'
        return response
    return render(
        request,
        "placement/reservation_detail.html",
        {"r": reservation, "s": h.settings, "powercli": h.powercli, "json": json.dumps(h.settings, indent=2),
         "numa_affinity": h.numa_affinity, "problems": h.problems, "out_of_date": SCRIPT_OUT_OF_DATE,
         "held": h.held, "not_runnable": h.not_runnable,
         "can_release": has_role(request.user, PLANNER) and may_change_owned(request.user, reservation),
         "ttl_max_minutes": TTL_MAX_MINUTES},
    )  # fmt: skip


@require_POST
@role_required(PLANNER)
def reservation_release(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = get_object_or_404(Reservation, pk=pk)
    if not may_change_owned(request.user, reservation):
        return forbidden(request, ReservationOwnerOrAdmin.message)
    services.release_reservation(reservation=reservation)
    url = reverse("placement:reservation_detail", args=[pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@role_required(PLANNER)
def reservation_renew(request: HttpRequest, pk: int) -> HttpResponse:
    """The page's Extend: hold the reservation for ``ttl_minutes`` from now (as the API's renew); the page says
    what happened (a hold that already ended is not renewed)."""
    reservation = get_object_or_404(Reservation, pk=pk)
    if not may_change_owned(request.user, reservation):
        return forbidden(request, "only the planner who made this reservation or an admin can extend it")
    raw = request.POST.get("ttl_minutes", "").strip()
    before = reservation.expires_at
    whole = raw.lstrip("-").isdigit() and raw.count("-") <= 1
    try:
        if raw and not whole:
            raise RequestError("ttl_minutes", "must be a whole number of minutes")
        renewed = services.renew_reservation(reservation=reservation, ttl_minutes=int(raw) if raw else None)
    except RequestError as exc:
        shown = f" ({raw!r})" if raw else ""
        message = exc.message if raw else "is required: the minutes to hold it for, from now"
        messages.error(request, f"Not extended: the hold time{shown} {message}.")
    except services.ReservationNotActive as exc:
        messages.error(request, f"Not extended: {exc}.")
    else:
        until = timezone.localtime(renewed.expires_at)
        if before and renewed.expires_at < before:  # N minutes from now can end before the hold did: say so
            was = timezone.localtime(before)
            messages.warning(
                request,
                f"Shortened: the hold for {renewed.vm_name} now ends at {until:%Y-%m-%d %H:%M %Z}, earlier than "
                f"{was:%H:%M %Z}, when it ended before ({raw} minutes from now).",
            )
        else:
            messages.success(
                request, f"Extended: the hold for {renewed.vm_name} now ends at {until:%Y-%m-%d %H:%M %Z}."
            )
    url = reverse("placement:reservation_detail", args=[pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)

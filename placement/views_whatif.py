"""The what-if page: a form (planner role to run), the run polled with htmx until finished (HTTP 286 stops
the polling, as on the sync page), and the report with server-rendered SVG charts."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods

from gpucatalog.catalog import load_catalog
from inventory.models import Cluster
from inventory.roles import PLANNER, has_role
from placement.engine.simulate_model import MODES, POLICIES, REASON_TEXT, RULE_SETS, UNTIL, SimulationError
from placement.models import WhatIfRun
from placement.whatif import MAX_RUNS, start_whatif
from placement.whatif_svg import histogram, memory_maps, placeable_bars

HTMX_STOP_POLLING = 286
RECENT = 10


class WhatIfForm(forms.Form):
    cluster = forms.ChoiceField(choices=(), required=False, label="Cluster")
    board = forms.ChoiceField(choices=(), initial="A100-80GB")
    hosts = forms.IntegerField(min_value=1, max_value=64, initial=1)
    gpus_per_host = forms.IntegerField(label="GPUs per host", min_value=1, max_value=16, initial=1)
    mode = forms.ChoiceField(choices=[(m, m) for m in MODES], initial="mixed")
    policy = forms.ChoiceField(choices=[(p, p) for p in POLICIES], initial="performance")
    catalog = forms.CharField(max_length=200, initial="8C,10C,20C", help_text="8C,10C,20C / 3g.40gb / 1,2,4")
    weights = forms.CharField(max_length=200, required=False, help_text="one per catalog entry; empty: equal")
    runs = forms.IntegerField(min_value=1, max_value=MAX_RUNS, initial=500)
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=1)
    until = forms.ChoiceField(choices=[(u, u) for u in UNTIL if u != "sequence"], initial="budget")
    rules = forms.ChoiceField(choices=[(r, r) for r in RULE_SETS], initial="vsphere")
    compare = forms.BooleanField(required=False, label="Add the comparisons")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        clusters = Cluster.objects.filter(stale=False).order_by("name").values_list("name", flat=True).distinct()
        self.fields["cluster"].choices = [("", "hypothetical: hosts x GPUs below"), *((c, c) for c in clusters)]
        self.fields["board"].choices = [(b, b) for b in sorted(load_catalog().boards)]

    def data_for_engine(self) -> dict:
        d = dict(self.cleaned_data)
        weights = d.pop("weights") or ""
        try:
            d["weights"] = [float(w) for w in weights.split(",") if w.strip()] or None
        except ValueError:
            raise SimulationError("weights", "weights must be numbers separated by commas") from None
        return d


def _context(run: WhatIfRun) -> dict:
    ctx: dict = {"run": run, "finished": run.finished}
    r = run.result
    if run.status == WhatIfRun.Status.SUCCESS and r:
        dist = r.get("distribution", {})
        ctx["metrics"] = [(m, r[m]) for m in ("siloed_gb", "rejected", "placed", "placed_gb", "utilization_pct")]
        ctx["reasons"] = [
            (REASON_TEXT.get(k, k), v) for k, v in sorted(r["rejected_by_reason"].items(), key=lambda kv: -kv[1])
        ]
        ctx["siloed_svg"] = histogram(dist.get("siloed_gb", []), r["siloed_gb"], title="Siloed GB per run", unit=" GB")
        ctx["rejected_svg"] = histogram(dist.get("rejected", []), r["rejected"], title="Rejected requests per run")
        ctx["placeable_svg"] = placeable_bars(r["placeable"])
        worst = r["worst_run"]
        ctx["maps_svg"] = memory_maps(
            worst["layout"],
            title=f"Worst run (seed {worst['seed']}): {worst['siloed_gb']} GB siloed, {worst['rejected']} rejected",
        )
        ctx["scenario"] = r["scenario"]
        ctx["comparisons"] = r.get("comparisons", [])
        ctx["article"] = r.get("article")
    return ctx


def _run_response(request: HttpRequest, run: WhatIfRun, *, status: int = 200) -> HttpResponse:
    ctx = _context(run)
    if run.finished and status == 200:
        status = HTMX_STOP_POLLING
    return render(request, "placement/whatif_run.html", ctx, status=status)


@require_http_methods(["GET", "POST"])
def whatif(request: HttpRequest) -> HttpResponse:
    """The form and the recent runs; a POST (planner role) starts a run and answers its (polling) partial."""
    if request.method == "POST":
        form = WhatIfForm(request.POST)
        if not has_role(request.user, PLANNER):
            form.is_valid()
            form.add_error(None, "running a what-if needs the planner role")
            return _form_response(request, form, status=403)
        if form.is_valid():
            try:
                run = start_whatif(data=form.data_for_engine(), user=request.user)
            except SimulationError as exc:
                form.add_error(
                    exc.field if exc.field in form.fields else None,
                    f"{exc.field}: {exc.message}" if exc.field not in form.fields else exc.message,
                )
            else:
                run.refresh_from_db()
                if getattr(request, "htmx", None):  # the run, and the form again without stale errors
                    response = render(request, "placement/whatif_run.html", _context(run))
                    form_html = render_to_string(
                        "placement/whatif.html#whatif-form",
                        {"form": form, "oob": True, "can_plan": True},
                        request=request,
                    )
                    response.content += form_html.encode()
                    return response
                return render(request, "placement/whatif_detail.html", _context(run))
        return _form_response(request, form, status=400)
    recent = WhatIfRun.objects.select_related("created_by")[:RECENT]
    return render(request, "placement/whatif.html", {"form": WhatIfForm(), "recent": recent})


def _form_response(request: HttpRequest, form: WhatIfForm, *, status: int) -> HttpResponse:
    if getattr(request, "htmx", None):
        response = render(request, "placement/whatif.html#whatif-form", {"form": form}, status=status)
        response["HX-Retarget"] = "#whatif-form"
        response["HX-Reswap"] = "outerHTML"
        return response
    recent = WhatIfRun.objects.select_related("created_by")[:RECENT]
    return render(request, "placement/whatif.html", {"form": form, "recent": recent}, status=status)


@require_GET
def whatif_run(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: the polled partial for htmx (286 once finished), the full page otherwise."""
    run = get_object_or_404(WhatIfRun, pk=pk)
    if getattr(request, "htmx", None):
        return _run_response(request, run)
    return render(request, "placement/whatif_detail.html", _context(run))

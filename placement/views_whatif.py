"""The what-if page: a form (planner role to run), the run polled with htmx until finished (HTTP 286 stops
the polling, as on the sync page), and the report with server-rendered SVG charts."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods, require_safe

from gpucatalog.catalog import load_catalog
from inventory.models import Cluster
from inventory.roles import PLANNER, has_role
from placement.engine.simulate import MAX_GPUS_PER_HOST, MAX_HOSTS, MAX_MEMORY_GB, MAX_VCPUS
from placement.engine.simulate_model import (
    ALIGNMENTS,
    HOST_CHOICES,
    MIG_SLOTS,
    MODES,
    POLICIES,
    RULE_SETS,
    SET_CHOICES,
    TOPOLOGIES,
    UNTIL,
    SimulationError,
    default_catalog,
    parse_offers,
    plural,
    reason_text,
)
from placement.forms import cluster_choices
from placement.models import WhatIfRun
from placement.whatif import (
    DEFAULTS,
    HYPOTHETICAL_ONLY,
    MAX_RUNS,
    defaults_text,
    hypothetical_only_errors,
    start_whatif,
)
from placement.whatif_svg import histogram, memory_maps, placeable_bars

HTMX_STOP_POLLING = 286
RECENT = 10
# The report's per-run statistics as the tables name them.
METRIC_LABELS = {
    "siloed_gb": "Siloed memory (GB)",
    "locked_gb": "Locked memory (GB)",
    "rejected": "Rejected requests",
    "placed": "Placed VMs",
    "placed_gb": "Placed (GB)",
    "utilization_pct": "Utilization (%)",
}
COMPARISON_LABELS = {
    "mode": "vGPU mode",
    "policy": "Assignment policy",
    "catalog": "Profile catalog",
    "mig-layout": "MIG layout",
    "multi-gpu": "Multi-GPU sets",
}


def _choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(v, v) for v in values]


def _cluster_or_default(name: str) -> tuple[str, str]:
    """The empty choice of a field a stored cluster fills in (``whatif.CLUSTER_DEFAULTS``)."""
    return ("", f"the cluster's ({DEFAULTS[name]} for hypothetical hosts)")


class WhatIfForm(forms.Form):
    """The page's what-if: the simple fields, and the advanced ones (``ADVANCED``) in a collapsed section.
    Ranges and rules are the engine's (``placement.whatif.normalize``, the simulator): an error it raises is
    shown on the field it names."""

    cluster = forms.ChoiceField(choices=(), required=False, label="Cluster")
    # board, mode and policy left empty: the cluster's own on a stored cluster, DEFAULTS' on hypothetical hosts
    board = forms.ChoiceField(choices=(), required=False)
    hosts = forms.IntegerField(min_value=1, max_value=MAX_HOSTS, initial=DEFAULTS["hosts"])
    gpus_per_host = forms.IntegerField(
        label="GPUs per host", min_value=1, max_value=MAX_GPUS_PER_HOST, initial=DEFAULTS["gpus_per_host"]
    )
    mode = forms.ChoiceField(choices=[_cluster_or_default("mode"), *_choices(MODES)], required=False)
    policy = forms.ChoiceField(choices=[_cluster_or_default("policy"), *_choices(POLICIES)], required=False)
    catalog = forms.CharField(
        max_length=200, required=False, help_text="8C,10C,20C / 3g.40gb / 1,2,4; empty: the default for the board "
        "and mode (8C,10C,20C on A100-80GB mixed)",
        widget=forms.TextInput(attrs={"placeholder": "default for the board and mode"}),
    )  # fmt: skip
    weights = forms.CharField(max_length=200, required=False, help_text="one per catalog entry; empty: equal")
    runs = forms.IntegerField(min_value=1, max_value=MAX_RUNS, initial=DEFAULTS["runs"])
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=DEFAULTS["seed"])
    until = forms.ChoiceField(choices=_choices(UNTIL), initial=DEFAULTS["until"])
    rules = forms.ChoiceField(choices=_choices(RULE_SETS), initial=DEFAULTS["rules"])
    compare = forms.BooleanField(required=False, label="Add the comparisons")
    # advanced
    departures = forms.FloatField(
        required=False, initial=DEFAULTS["departures"], label="Departures (probability, 0 to below 1)",
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "0.99"}),
    )  # fmt: skip
    host_choice = forms.ChoiceField(
        choices=[("", "default for the rules"), *_choices(HOST_CHOICES)], required=False, label="Host choice"
    )
    alignment = forms.ChoiceField(
        choices=[("", "default for the rules"), *_choices(ALIGNMENTS)], required=False,
        label="GPU alignment (article rules)",
    )  # fmt: skip
    set_choice = forms.ChoiceField(
        choices=_choices(SET_CHOICES), required=False, initial=DEFAULTS["set_choice"], label="Multi-GPU set choice"
    )
    mig_slot = forms.ChoiceField(
        choices=_choices(MIG_SLOTS), required=False, initial=DEFAULTS["mig_slot"], label="MIG slot rule"
    )
    topology = forms.ChoiceField(
        choices=_choices(TOPOLOGIES),
        required=False,
        initial=DEFAULTS["topology"],
        label="Topology (hypothetical hosts)",
    )
    require_nvlink = forms.BooleanField(required=False, label="Require NVLink for multi-GPU VMs")
    # no min_value: the engine's "must not be negative" names the field as the command's and the API's do
    vcpus = forms.IntegerField(
        required=False, max_value=MAX_VCPUS, initial=DEFAULTS["vcpus"], label="vCPUs per VM (0: not counted)"
    )
    memory_gb = forms.IntegerField(
        required=False,
        max_value=MAX_MEMORY_GB,
        initial=DEFAULTS["memory_gb"],
        label="Memory GB per VM (0: not counted)",
    )
    sequence = forms.CharField(
        required=False, max_length=20_000, label="Arrival sequence (until=sequence)",
        widget=forms.TextInput(attrs={"placeholder": "10C,8C,8C,20C"}),
    )  # fmt: skip

    ADVANCED = (
        "departures", "host_choice", "alignment", "set_choice", "mig_slot", "topology", "require_nvlink", "vcpus",
        "memory_gb", "sequence",
    )  # fmt: skip

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["cluster"].choices = [("", "hypothetical: hosts x GPUs below"), *cluster_choices()]
        self.fields["board"].choices = [_cluster_or_default("board"), *((b, b) for b in sorted(load_catalog().boards))]

    @property
    def advanced_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.ADVANCED]

    @property
    def advanced_open(self) -> bool:
        """Open the advanced section when one of its fields has an error or was changed from its default."""
        if not self.is_bound:
            return False
        if any(self[name].errors for name in self.ADVANCED):
            return True
        return any(self.data.get(name) not in (None, "", str(self[name].initial), "0") for name in self.ADVANCED)

    def _not_negative(self, name: str) -> int | None:
        # the engine says the same, but stops at its first problem: the form marks every negative count at once
        value = self.cleaned_data.get(name)
        if value is not None and value < 0:
            raise forms.ValidationError("must not be negative")
        return value

    def clean_vcpus(self) -> int | None:
        return self._not_negative("vcpus")

    def clean_memory_gb(self) -> int | None:
        return self._not_negative("memory_gb")

    def clean_weights(self) -> list[float] | None:
        text = self.cleaned_data.get("weights") or ""
        try:
            return [float(w) for w in text.split(",") if w.strip()] or None
        except ValueError:
            raise forms.ValidationError("weights must be numbers separated by commas") from None

    def clean(self) -> dict:
        """The catalog against the board and mode, with its weights, checked whatever else is wrong, so one
        submit shows every error (the engine's own checks stop at the first)."""
        cleaned = super().clean()
        if cleaned.get("cluster"):  # hosts, GPUs per host and topology shape hypothetical hosts only
            shape = {name: cleaned.get(name) or None for name in HYPOTHETICAL_ONLY if name not in self.errors}
            for name, message in hypothetical_only_errors(shape).items():
                self.add_error(name, message)
        board, mode, catalog = cleaned.get("board"), cleaned.get("mode"), cleaned.get("catalog")
        if not cleaned.get("cluster"):
            board = board if "board" in self.errors else board or DEFAULTS["board"]
            mode = mode if "mode" in self.errors else mode or DEFAULTS["mode"]
        if board and mode and catalog:
            gpus = 16 if cleaned.get("cluster") else cleaned.get("gpus_per_host") or 16  # 16: as for a cluster
            weights = None if "weights" in self.errors else cleaned.get("weights")
            try:
                parse_offers(board, mode, catalog.split(","), weights, gpus)
            except SimulationError as exc:
                field = exc.field if exc.field in self.fields and exc.field not in self.errors else None
                self.add_error(field, exc.message if field else str(exc))
        elif board and mode and not catalog and not cleaned.get("cluster") and cleaned.get("weights"):
            # weights without a catalog: the default catalog of the board and mode (a cluster's are its own)
            gpus = cleaned.get("gpus_per_host")
            if gpus and not {"weights", "catalog", "gpus_per_host"} & set(self.errors):
                try:
                    tokens = default_catalog(board, mode, gpus)
                    parse_offers(board, mode, tokens, cleaned["weights"], gpus, catalog_given=False)
                except SimulationError as exc:
                    field = exc.field if exc.field in self.fields and exc.field not in self.errors else None
                    self.add_error(field, exc.message if field else str(exc))
        return cleaned

    def data_for_engine(self) -> dict:
        d = dict(self.cleaned_data)
        for name in (
            "board", "mode", "policy", "catalog", "host_choice", "alignment", "set_choice", "mig_slot", "topology",
        ):  # fmt: skip
            d[name] = d[name] or None  # not sent (or "default"): normalize fills in the default
        if d["sequence"] and d["until"] == DEFAULTS["until"]:
            del d["until"]  # the form always sends until; its default lets a sequence imply until=sequence
        return d


def where_of(run: WhatIfRun, labels: dict[str, str] | None = None) -> str:
    """What a run simulated, for its heading: "cluster name (vCenter)" or "N hosts x M GPUs"."""
    scenario = (run.result or {}).get("scenario") or {}
    if scenario.get("cluster"):
        vcenter = scenario.get("vcenter")
        return f"cluster {scenario['cluster']}" + (f" ({vcenter})" if vcenter else "")
    value = str(run.params.get("cluster") or "")
    if not value:
        return f"{plural(run.params.get('hosts', 1), 'host')} x {plural(run.params.get('gpus_per_host', 1), 'GPU')}"
    if labels is None:
        labels = cluster_labels([run])
    return f"cluster {labels.get(value, value)}"


def advanced_of(run: WhatIfRun) -> list[str]:
    """The advanced parameters a run changed from their defaults, as "name value" (or "8 vCPUs per VM"), for its
    heading."""
    out = []
    for name in WhatIfForm.ADVANCED:
        value = run.params.get(name)
        default = DEFAULTS[name]
        if name == "host_choice":
            default = "drs"  # normalize fills it in per rule set; vSphere's is DRS
        elif name == "alignment" and run.params.get("rules") != "article":
            continue  # only the article rules align
        if value in (None, default, [], ""):
            continue
        if name == "vcpus":
            out.append(f"{plural(value, 'vCPU')} per VM")
        elif name == "memory_gb":
            out.append(f"memory {value:,} GB per VM")
        elif name == "require_nvlink":
            out.append("NVLink required")
        else:
            shown = ",".join(value) if isinstance(value, list) else value
            out.append(f"{name.replace('_', ' ')} {shown}")
    return out


def cluster_labels(runs: list[WhatIfRun]) -> dict[str, str]:
    """The clusters that runs name by id, as "name (vCenter)" (one query)."""
    ids = {int(v) for r in runs if (v := str(r.params.get("cluster") or "")).isascii() and v.isdigit()}
    clusters = Cluster.objects.filter(pk__in=ids).select_related("vcenter")
    return {str(c.pk): f"{c.name} ({c.vcenter.name})" for c in clusters}


def _recent() -> list[WhatIfRun]:
    runs = list(WhatIfRun.objects.select_related("created_by")[:RECENT])
    labels = cluster_labels(runs)
    for r in runs:
        r.where = where_of(r, labels)
    return runs


def _context(run: WhatIfRun) -> dict:
    ctx: dict = {"run": run, "finished": run.finished, "where": where_of(run), "advanced": advanced_of(run)}
    r = run.result
    if run.status == WhatIfRun.Status.SUCCESS and r:
        dist = r.get("distribution", {})
        same = r["scenario"]["mode"] == "same"
        # locked GB: same-size only (other modes lock nothing), and absent from runs stored before it existed
        ctx["metrics"] = [(label, r[m]) for m, label in METRIC_LABELS.items() if m in r and (same or m != "locked_gb")]
        ctx["reasons"] = [
            (reason_text(k, r["scenario"]["mode"]), v)
            for k, v in sorted(r["rejected_by_reason"].items(), key=lambda kv: -kv[1])
        ]
        ctx["rejected_total"] = sum(v for _, v in ctx["reasons"])
        ctx["siloed_svg"] = histogram(dist.get("siloed_gb", []), r["siloed_gb"], title="Siloed GB per run", unit=" GB")
        if same and "locked_gb" in dist:
            ctx["locked_svg"] = histogram(dist["locked_gb"], r["locked_gb"], title="Locked GB per run", unit=" GB")
        ctx["rejected_svg"] = histogram(dist.get("rejected", []), r["rejected"], title="Rejected requests per run")
        ctx["placeable_svg"] = placeable_bars(r["placeable"])
        worst = r["worst_run"]
        ctx["maps_svg"] = memory_maps(
            worst["layout"],
            title=f"Worst run (seed {worst['seed']}): {worst['siloed_gb']} GB siloed, "
            f"{plural(worst['rejected'], 'request')} rejected",
        )
        ctx["scenario"] = r["scenario"]
        ctx["defaults_text"] = defaults_text(r["scenario"])
        ctx["comparisons"] = [
            {**c, "label": COMPARISON_LABELS.get(c["key"], c["key"])} for c in r.get("comparisons", [])
        ]
        ctx["article"] = r.get("article")
    return ctx


def status_text(run: WhatIfRun) -> str:
    """What a run has come to, in one line for the page's status region (announced by screen readers)."""
    name = f"What-if #{run.pk}"
    if run.status == WhatIfRun.Status.QUEUED:
        return f"{name} is queued: waiting for a worker."
    if run.status == WhatIfRun.Status.RUNNING:
        return f"{name} is running."
    if run.status == WhatIfRun.Status.FAILED:
        return f"{name} failed: {run.error}"
    r = run.result or {}
    siloed, rejected = r.get("siloed_gb") or {}, r.get("rejected") or {}
    return (
        f"{name} finished: {plural(r.get('runs', 0), 'run')}; siloed memory median {siloed.get('p50', 0)} GB, "
        f"worst {siloed.get('max', 0)} GB; rejected requests median {rejected.get('p50', 0)}."
    )


def _run_response(request: HttpRequest, run: WhatIfRun, *, status: int = 200) -> HttpResponse:
    ctx = _context(run)
    if run.finished and status == 200:
        status = HTMX_STOP_POLLING
        ctx["announce"] = status_text(run)  # once, as the polling stops; not each second while it runs
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
                    response = render(
                        request, "placement/whatif_run.html", {**_context(run), "announce": status_text(run)}
                    )
                    form_html = render_to_string(
                        "placement/whatif.html#whatif-form",
                        {"form": form, "oob": True, "can_plan": True},
                        request=request,
                    )
                    response.content += form_html.encode()
                    return response
                return render(request, "placement/whatif_detail.html", _context(run))
        return _form_response(request, form, status=400)
    recent = _recent()
    return render(request, "placement/whatif.html", {"form": WhatIfForm(), "recent": recent})


def _form_response(request: HttpRequest, form: WhatIfForm, *, status: int) -> HttpResponse:
    if getattr(request, "htmx", None):
        response = render(request, "placement/whatif.html#whatif-form", {"form": form}, status=status)
        response["HX-Retarget"] = "#whatif-form"
        response["HX-Reswap"] = "outerHTML"
        return response
    recent = _recent()
    return render(request, "placement/whatif.html", {"form": form, "recent": recent}, status=status)


@require_safe
def whatif_run(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: the polled partial for htmx (286 once finished), the full page otherwise."""
    run = get_object_or_404(WhatIfRun, pk=pk)
    if getattr(request, "htmx", None):
        return _run_response(request, run)
    return render(request, "placement/whatif_detail.html", _context(run))

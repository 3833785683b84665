"""``/api/whatif/``: start a capacity what-if and poll it (``placement.whatif``).

POST validates the parameters (types and bounds, the board, the cluster, and the catalog against the board, mode
and weights here, every bad field in one answer as the page does; the other cross-field rules and the size limit
in the engine, each error naming its field), stores the run and answers 201 with the finished run when it is small,
or 202 with the queued run and its ``Location`` when it goes to Celery; poll ``GET /api/whatif/{id}/`` until
``finished`` is true. Every field has the defaults of the page and the command (``placement.whatif.DEFAULTS``).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.fields import SkipField
from rest_framework.response import Response

from config.api_input import CheckedFormat, KnownFieldsOnly, KnownQueryParams, StrictCharField
from gpucatalog.catalog import load_catalog
from placement.api.serializers import ClusterRefField
from placement.engine.simulate import MAX_GPUS_PER_HOST, MAX_HOSTS, MAX_MEMORY_GB, MAX_VCPUS
from placement.engine.simulate_model import (
    ALIGNMENTS,
    HOST_CHOICES,
    MAX_REQUESTS,
    MAX_WEIGHT,
    MIG_SLOTS,
    MODES,
    POLICIES,
    RULE_SETS,
    SET_CHOICES,
    TOPOLOGIES,
    UNTIL,
    SimulationError,
    board_or_error,
    default_catalog,
    parse_offers,
)
from placement.models import WhatIfRun
from placement.whatif import (
    DEFAULTS,
    HYPOTHETICAL_ONLY,
    MAX_RUNS,
    SYNC_WORK,
    hypothetical_only_errors,
    resolve_cluster,
    start_whatif,
)


class WhatIfRequestSerializer(KnownFieldsOnly):
    board = StrictCharField(
        max_length=40,
        required=False,
        help_text=f"Catalog board, e.g. H100-80GB (default: on a cluster its board with the most usable GPUs, else "
        f"{DEFAULTS['board']})",
    )
    mode = serializers.ChoiceField(
        choices=MODES,
        required=False,
        help_text=f"Default: on a cluster the mode most of its GPUs of the board are in, else {DEFAULTS['mode']}",
    )
    policy = serializers.ChoiceField(
        choices=POLICIES,
        required=False,
        help_text=f"Same-size assignment (default: on a cluster its hosts' policy, else {DEFAULTS['policy']})",
    )
    catalog = serializers.ListField(
        child=serializers.CharField(max_length=40),
        min_length=1,
        max_length=16,
        required=False,
        help_text="Offers: vGPU sizes (8C), MIG profiles (3g.40gb) or GPUs per passthrough VM (2). Default: for the "
        "board and mode the run uses: sizes near a tenth, an eighth and a quarter of the GPU (8C,10C,20C on 80 GB), "
        "the board's MIG profiles of 3, 2 and 1 compute slices, or VMs of 1, 2, 4 and 8 GPUs up to GPUs per host",
    )
    weights = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=MAX_WEIGHT),
        max_length=16,
        required=False,
        allow_null=True,
        help_text="One weight per catalog entry (default: equal); they must sum to a positive number",
    )
    hosts = serializers.IntegerField(
        min_value=1, max_value=MAX_HOSTS, default=DEFAULTS["hosts"],
        help_text="Hypothetical hosts only: with cluster, another value than the default is refused (null in params)",
    )  # fmt: skip
    gpus_per_host = serializers.IntegerField(
        min_value=1, max_value=MAX_GPUS_PER_HOST, default=DEFAULTS["gpus_per_host"],
        help_text="Hypothetical hosts only: with cluster, another value than the default is refused (null in params)",
    )  # fmt: skip
    runs = serializers.IntegerField(
        min_value=1, max_value=MAX_RUNS, default=DEFAULTS["runs"],
        help_text=f"Monte Carlo runs (seeds seed, seed + 1, ...); above {SYNC_WORK:,} GPU-runs the run goes to a task",
    )  # fmt: skip
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=DEFAULTS["seed"])
    until = serializers.ChoiceField(choices=UNTIL, required=False, help_text="Stop rule (default budget)")
    sequence = serializers.ListField(
        child=serializers.CharField(max_length=40),
        max_length=MAX_REQUESTS,
        required=False,
        help_text="Explicit arrivals (catalog entries), implies until=sequence",
    )
    rules = serializers.ChoiceField(choices=RULE_SETS, default=DEFAULTS["rules"])
    host_choice = serializers.ChoiceField(choices=HOST_CHOICES, required=False)
    alignment = serializers.ChoiceField(choices=ALIGNMENTS, required=False, help_text="Article rule set only")
    departures = serializers.FloatField(min_value=0, max_value=0.99, default=DEFAULTS["departures"])
    vcpus = serializers.IntegerField(
        min_value=0, max_value=MAX_VCPUS, default=DEFAULTS["vcpus"], help_text="Per VM (0: not counted)"
    )
    memory_gb = serializers.IntegerField(
        min_value=0, max_value=MAX_MEMORY_GB, default=DEFAULTS["memory_gb"], help_text="Per VM (0: not counted)"
    )
    cluster = ClusterRefField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text='A stored cluster instead: its id, name or "name (vCenter)" (a name several vCenters share: the id)',
    )
    compare = serializers.BooleanField(default=False, help_text="Add the side-by-side comparisons")
    set_choice = serializers.ChoiceField(choices=SET_CHOICES, default=DEFAULTS["set_choice"])
    mig_slot = serializers.ChoiceField(choices=MIG_SLOTS, default=DEFAULTS["mig_slot"])
    topology = serializers.ChoiceField(
        choices=TOPOLOGIES, default=DEFAULTS["topology"],
        help_text="Hypothetical hosts only: with cluster, another value than the default is refused (null in params)",
    )  # fmt: skip
    require_nvlink = serializers.BooleanField(default=False)
    sync = serializers.BooleanField(
        required=False, help_text=f"true: answer now or refuse (above {SYNC_WORK:,} GPU-runs); default: decide"
    )

    def validate_board(self, value: str) -> str:
        try:
            board_or_error(value)
        except SimulationError as exc:
            raise serializers.ValidationError(exc.message) from None
        return value

    def validate_cluster(self, value: str) -> str:
        if value.strip():
            try:
                resolve_cluster(value)
            except SimulationError as exc:
                raise serializers.ValidationError(exc.message) from None
        return value

    def to_internal_value(self, data):
        """The fields, and the catalog against the board, mode and weights whatever else is wrong, so one answer
        names every bad field (the engine's own checks stop at the first)."""
        errors: dict = {}
        value = None
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict) or not hasattr(data, "get"):
                raise
            errors = dict(exc.detail)
        fields = value if value is not None else self._valid_fields(data, errors)
        cluster = self._cluster_given(data)
        bad = self._catalog_error(fields, cluster=cluster, invalid=set(errors))
        if bad is not None and bad[0] not in errors:
            errors[bad[0]] = [bad[1]]
        if cluster:  # hosts, gpus_per_host and topology shape hypothetical hosts only: each one given is refused
            for name, message in hypothetical_only_errors(fields).items():
                errors.setdefault(name, [message])
        if errors:
            raise serializers.ValidationError(errors)
        return value

    @staticmethod
    def _cluster_given(data) -> bool:
        """A stored cluster was asked for (its id or a name that is not blank), whether or not it exists."""
        value = data.get("cluster")
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, str) and bool(value.strip()))

    def _valid_fields(self, data, errors: dict) -> dict:
        """The fields the catalog and cluster checks need that are valid on their own (their defaults when
        absent)."""
        out = {}
        for name in ("board", "mode", "catalog", "weights", *HYPOTHETICAL_ONLY):
            if name in errors or (name in ("board", "mode") and name not in data):
                continue
            try:
                out[name] = self.fields[name].run_validation(data.get(name, serializers.empty))
            except (serializers.ValidationError, SkipField):
                continue
        return out

    @staticmethod
    def _catalog_error(fields: dict, *, cluster: bool, invalid: set[str]) -> tuple[str, str] | None:
        if "catalog" not in fields:
            # the default catalog is the board's and mode's: unknown while either of them is invalid
            if invalid & {"board", "mode", "catalog"}:
                return None
            return default_catalog_error(fields, cluster=cluster)
        gpus = MAX_GPUS_PER_HOST if cluster else fields.get("gpus_per_host", MAX_GPUS_PER_HOST)
        # On a cluster a board or mode not given is the cluster's (the engine checks the catalog against it): here
        # the catalog is refused only when no board and mode would take it.
        boards = [fields["board"]] if "board" in fields else [DEFAULTS["board"]]
        modes = [fields["mode"]] if "mode" in fields else [DEFAULTS["mode"]]
        if cluster:
            boards += [] if "board" in fields else sorted(set(load_catalog().boards) - {DEFAULTS["board"]})
            modes += [] if "mode" in fields else [m for m in MODES if m != DEFAULTS["mode"]]
        first = None
        for board in boards:
            for mode in modes:
                try:
                    parse_offers(board, mode, fields["catalog"], fields.get("weights"), gpus)
                except SimulationError as exc:
                    first = first or (exc.field, exc.message)
                else:
                    return None
        return first


def default_catalog_error(fields: dict, *, cluster: bool) -> tuple[str, str] | None:
    """Weights given without a catalog, on hypothetical hosts: checked against the default catalog of the board and
    mode (a cluster's board and mode are its own: the engine checks them once it has read the cluster)."""
    if cluster or not fields.get("weights") or "gpus_per_host" not in fields:
        return None
    board, mode = fields.get("board", DEFAULTS["board"]), fields.get("mode", DEFAULTS["mode"])
    try:
        tokens = default_catalog(board, mode, fields["gpus_per_host"])
        parse_offers(board, mode, tokens, fields["weights"], fields["gpus_per_host"], catalog_given=False)
    except SimulationError as exc:
        return exc.field, exc.message
    return None


class WhatIfRunSerializer(serializers.ModelSerializer):
    finished = serializers.BooleanField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)
    params = serializers.JSONField(
        read_only=True,
        help_text="The validated parameters, defaults filled in (defaults: which were not given and where their "
        "value came from, as in the result's scenario)",
    )
    result = serializers.JSONField(
        read_only=True,
        allow_null=True,
        help_text="Once finished: runs, siloed_gb / locked_gb / rejected / placed {p50,p90,p95,p99,max,min,mean,sem} "
        "(locked_gb, same size only: free GB of GPUs holding VMs that only the profile they are locked to can still "
        "use; 0 in other modes), placeable {profile: median count}, worst_seed, worst_run (events and memory maps), "
        "distribution, scenario (what ran; its defaults say which of board, mode, policy and catalog were not given "
        "and where their value came from: cluster, the stored cluster's; default, the default for hypothetical "
        "hosts or of a cluster that does not say; for-mode, the catalog for the board and mode), comparisons (each "
        "with a note and the changed parameters when it ran another scenario than "
        "yours, or skipped with why), notes (what the rules mean for the figures)",
    )

    class Meta:
        model = WhatIfRun
        fields = [
            "id",
            "status",
            "finished",
            "progress_current",
            "progress_total",
            "params",
            "result",
            "error",
            "created_by",
            "created",
            "started_at",
            "finished_at",
        ]


@extend_schema_view(
    list=extend_schema(summary="List what-if runs", description="Newest first."),
    retrieve=extend_schema(summary="Get a what-if run (poll it until `finished`)"),
)
class WhatIfViewSet(CheckedFormat, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Capacity what-ifs: simulate profile catalogs, vGPU modes, policies, MIG layouts and multi-GPU sets."""

    queryset = WhatIfRun.objects.select_related("created_by").order_by("-created", "-id")
    serializer_class = WhatIfRunSerializer
    filter_backends = [KnownQueryParams]  # no filters: only paging and format

    @extend_schema(
        summary="Run a capacity what-if (planner)",
        request=WhatIfRequestSerializer,
        responses={
            201: OpenApiResponse(WhatIfRunSerializer, description="Small enough to answer at once: the finished run"),
            202: OpenApiResponse(WhatIfRunSerializer, description="Queued as a task: poll the Location"),
            400: OpenApiResponse(description="A field is invalid: {field: [message]}"),
        },
    )
    def create(self, request, *args, **kwargs):  # kwargs: the URL's format suffix
        serializer = WhatIfRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        sync = data.pop("sync", None)
        try:
            run = start_whatif(data=data, user=request.user, sync=sync)
        except SimulationError as exc:
            return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        run.refresh_from_db()
        body = WhatIfRunSerializer(run, context=self.get_serializer_context()).data
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{run.pk}/")
        code = status.HTTP_201_CREATED if run.finished else status.HTTP_202_ACCEPTED
        return Response(body, status=code, headers={"Location": location})

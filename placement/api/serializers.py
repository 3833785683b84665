"""Request and response shapes of the placement API (every field documented in /api/schema/)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api_input import KnownFieldsOnly, StrictCharField
from inventory.models import SBDF_RE
from placement.engine.request import (
    CONSUMPTIONS,
    INTERCONNECTS,
    MAX_FRAMEBUFFER_GB,
    MAX_GPUS_PER_VM,
    MAX_HARDWARE_LABEL,
    MAX_MEMORY_MB,
    MAX_VCPUS,
    MAX_VMS,
)
from placement.models import Reservation
from placement.reservation_health import problems_of
from placement.validators import TTL_MAX_MINUTES, VM_NAME_MAX, vm_name_problem

# A plan or reservation names at most this many clusters: each is looked up, and 9,000 copies of one name held a
# web worker past its timeout.
MAX_CLUSTERS = 100


class ClusterRefField(serializers.CharField):
    """A cluster by name (text) or by id (text or a whole number); other JSON types are refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int):
            raise serializers.ValidationError(
                "Give a cluster as its name or id: text in double quotes, or a whole number", code="invalid"
            )
        return super().to_internal_value(data)


class NamedChoiceField(serializers.ChoiceField):
    """A choice whose error lists the choices (DRF's says only '"foo" is not a valid choice.')."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            shown = str(data)[:40]
            raise serializers.ValidationError(
                f"{shown!r} is not one of: {', '.join(map(str, self.choices))}", code="invalid_choice"
            ) from None


class PlanRequestSerializer(KnownFieldsOnly):
    gpus_per_vm = serializers.IntegerField(min_value=1, max_value=MAX_GPUS_PER_VM)
    consumption = NamedChoiceField(choices=CONSUMPTIONS, required=False)
    profile = StrictCharField(required=False, allow_null=True, max_length=120)
    vms = serializers.IntegerField(min_value=1, max_value=MAX_VMS, default=1)
    board = StrictCharField(required=False, allow_null=True, max_length=40)
    min_framebuffer_gb = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_FRAMEBUFFER_GB
    )
    interconnect = NamedChoiceField(choices=INTERCONNECTS, default="any")
    # the engine's bounds here too, so that every field's error comes back at once and the schema shows them
    vcpus = serializers.IntegerField(
        min_value=0,
        max_value=MAX_VCPUS,
        default=0,
        error_messages={"max_value": f"must be between 0 and {MAX_VCPUS} (vSphere's maximum per VM)"},
    )
    memory_mb = serializers.IntegerField(
        min_value=0,
        max_value=MAX_MEMORY_MB,
        default=0,
        error_messages={"max_value": f"must be between 0 and {MAX_MEMORY_MB:,} MB (24 TB, vSphere's maximum per VM)"},
    )
    anti_affinity = serializers.BooleanField(default=False)
    hardware_label = StrictCharField(
        required=False,
        allow_null=True,
        max_length=MAX_HARDWARE_LABEL,
        help_text="dynamic-passthrough only: the device's custom label; vSphere assigns only GPUs of that hardware "
        "label (none: any label)",
    )
    clusters = serializers.ListField(
        child=ClusterRefField(max_length=200),
        required=False,
        default=list,
        max_length=MAX_CLUSTERS,
        error_messages={
            "max_length": f"at most {MAX_CLUSTERS} clusters per request: name fewer, or none for every cluster"
        },
        help_text='Clusters in scope (none: every cluster), each by id, "name (vCenter)" or a name only one vCenter '
        f"uses; at most {MAX_CLUSTERS}, a cluster named twice counts once",
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    rejected_limit = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=100000,
        help_text="At most this many rejected hosts in the answer (rejected_count gives them all); none: every "
        "one. Over a whole estate the rejections are most of the answer (2,000 hosts: about 1 MB)",
    )

    def validate_clusters(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # a repeated name is looked up once


def _reserve_ignores(text: str) -> str:
    return f"{text} Accepted so that a plan's body can be sent as it is; a reservation ignores it."


class ReserveSerializer(PlanRequestSerializer):
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=1000, help_text=_reserve_ignores("The plan's candidate limit.")
    )
    rejected_limit = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=100000,
        help_text=_reserve_ignores("The plan's limit on rejected hosts (a 409 summarises the reasons anyway)."),
    )
    host_id = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="With pci_ids: reserve exactly this candidate of POST /api/plans/ (its host_id), not whatever is "
        "best now. When the host no longer offers those GPUs for the request the answer is 409 with code "
        '"changed" and what it offers now. vms 1 only (replicas are placed jointly: a 400 on host_id otherwise)',
    )
    pci_ids = serializers.ListField(
        child=StrictCharField(max_length=16),
        required=False,
        min_length=1,
        max_length=MAX_GPUS_PER_VM,
        help_text="With host_id: the chosen candidate's GPUs, the pci_id of each of its gpus (any order), "
        "gpus_per_vm of them",
    )
    vm_name = StrictCharField(
        max_length=VM_NAME_MAX,
        trim_whitespace=False,
        help_text="Name the VM will have (vSphere's rules: at most 80 characters, no control characters); with "
        "vms > 1 the replicas are vm_name-1 .. vm_name-N",
    )
    ttl_minutes = serializers.IntegerField(required=False, min_value=1, max_value=TTL_MAX_MINUTES)

    def validate_vm_name(self, value: str) -> str:
        problem = vm_name_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_pci_ids(self, value: list[str]) -> list[str]:
        wanted = [p.lower() for p in value]
        bad = [p for p in value if not SBDF_RE.fullmatch(p.lower())]
        if bad:
            raise serializers.ValidationError(f"{bad[0]!r} is not a PCI address of the form 0000:3b:00.0")
        twice = sorted({p for p in wanted if wanted.count(p) > 1})
        if twice:
            raise serializers.ValidationError(f"{twice[0]} is named twice: a VM's GPUs are distinct")
        return wanted

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        host_id, pci_ids = attrs.get("host_id"), attrs.get("pci_ids")
        errors = {}
        if pci_ids is not None and host_id is None:
            errors["host_id"] = ["required with pci_ids: the host of the chosen candidate (its host_id)"]
        if host_id is not None and pci_ids is None:
            errors["pci_ids"] = ["required with host_id: the chosen candidate's GPUs (the pci_id of each)"]
        if host_id is not None and attrs.get("vms", 1) > 1:
            errors["host_id"] = [
                f"reserves one chosen candidate, so only with vms 1 (this request has vms {attrs['vms']}): replicas "
                "are placed jointly; leave host_id and pci_ids out, or reserve each VM of the plan's assignment with "
                "vms 1"
            ]
        if pci_ids is not None and len(pci_ids) != attrs["gpus_per_vm"]:
            errors.setdefault(
                "pci_ids",
                [f"names {len(pci_ids)} GPU{'s' if len(pci_ids) != 1 else ''}, the request has gpus_per_vm "
                 f"{attrs['gpus_per_vm']}: give the chosen candidate's GPUs"],
            )  # fmt: skip
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


# --------------------------------------------------------------------------- plan responses


class GpuChoiceSerializer(serializers.Serializer):
    pci_id = serializers.CharField()
    index = serializers.IntegerField(help_text="nvidia-smi index (PCI bus order)")
    profile = serializers.CharField(required=False, help_text="vGPU type, for vGPU and MIG requests")
    placement_gb = serializers.IntegerField(required=False, help_text="Mixed-size placement ID (start offset, GB)")
    mig_slot = serializers.IntegerField(required=False, help_text="MIG start memory slice")


class BottleneckSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="Weakest link of the GPU set's best ring: NV18, PIX, SYS ...")
    gbps = serializers.FloatField(help_text="GB/s per direction of that link")


class CandidateSerializer(serializers.Serializer):
    host = serializers.CharField(help_text="Host name (unique only within its vCenter)")
    host_id = serializers.IntegerField(allow_null=True, help_text="Host primary key (null for a capture)")
    vcenter = serializers.CharField(default="", help_text="The host's vCenter")
    gpus = GpuChoiceSerializer(many=True)
    score = serializers.FloatField(
        help_text="Higher is better; the integer part is the bottleneck in GB/s (0 when no link is used)"
    )
    bottleneck = BottleneckSerializer(
        allow_null=True,
        help_text="Weakest link of the GPU set; null when no GPU-to-GPU link is used: a single GPU, or fractional "
        "vGPUs (no peer-to-peer between them)",
    )
    interconnect = serializers.CharField(
        help_text='The bottleneck in words: "NV12 300 GB/s"; "single GPU" for a 1-GPU set; "interconnect not used '
        '(fractional vGPUs)" for a set of fractional vGPUs'
    )
    numa_nodes = serializers.ListField(child=serializers.IntegerField())
    explanation = serializers.ListField(child=serializers.CharField())


class StoredCandidateSerializer(CandidateSerializer):
    """A reservation's accepted candidate as it was stored. Reservations made by older versions lack some keys
    (``host_id``, ``vcenter``, ``interconnect``): they read as null (``vcenter`` as "") rather than failing."""

    host_id = serializers.IntegerField(
        allow_null=True, default=None, help_text="Host primary key (null for a capture, or a reservation made by an "
        "older version)"
    )  # fmt: skip
    bottleneck = BottleneckSerializer(allow_null=True, default=None, help_text="Weakest link of the GPU set, or null")
    interconnect = serializers.CharField(
        allow_null=True, default=None, help_text="The bottleneck in words; null for a reservation made by an older "
        "version"
    )  # fmt: skip
    numa_nodes = serializers.ListField(child=serializers.IntegerField(), default=list)
    explanation = serializers.ListField(child=serializers.CharField(), default=list)


class AssignedCandidateSerializer(CandidateSerializer):
    vm_index = serializers.IntegerField(help_text="Replica number, from 0")


class RejectionSerializer(serializers.Serializer):
    host = serializers.CharField()
    host_id = serializers.IntegerField(allow_null=True)
    vcenter = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())


class PlanSerializer(serializers.Serializer):
    candidates = CandidateSerializer(many=True, help_text="Alternative hosts for one VM, best first")
    rejected = RejectionSerializer(many=True, help_text="Hosts that cannot take the VM, with the reasons")
    rejected_count = serializers.IntegerField(help_text="Rejected hosts in all, also those rejected_limit left out")
    assignment = AssignedCandidateSerializer(
        many=True, required=False, help_text="vms > 1: the joint placement, one entry per replica"
    )
    unplaced = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="vms > 1: why a replica found no host"
    )


# --------------------------------------------------------------------------- reservations


class StoredRequestSerializer(serializers.Serializer):
    gpus_per_vm = serializers.IntegerField()
    consumption = serializers.CharField()
    profile = serializers.CharField(allow_null=True, default=None)
    vms = serializers.IntegerField(default=1)
    board = serializers.CharField(allow_null=True, default=None)
    min_framebuffer_gb = serializers.IntegerField(allow_null=True, default=None)
    interconnect = serializers.CharField(default="any")
    vcpus = serializers.IntegerField(default=0)
    memory_mb = serializers.IntegerField(default=0)
    anti_affinity = serializers.BooleanField(default=False)
    clusters = serializers.ListField(child=serializers.CharField(), default=list)
    hardware_label = serializers.CharField(allow_null=True, default=None)


class ReservationSerializer(serializers.ModelSerializer):
    host = serializers.SerializerMethodField(
        help_text="The host's name; once the host was removed from the inventory, the name it had (host_id null)"
    )
    host_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="Null once the host was removed")
    vcenter = serializers.SerializerMethodField(
        help_text="The host's vCenter; once the vCenter was removed, the name it had"
    )
    close_reason = serializers.CharField(
        read_only=True, help_text="Why the hold ended when the advisor ended it (its vCenter or host was removed)"
    )
    problems = serializers.SerializerMethodField(
        help_text="What the inventory changed under an active reservation, one sentence each (its host or a GPU gone "
        "from vCenter, a GPU in another mode, locked to another vGPU profile or held by another VM, a VM of this "
        "name holding GPUs on another host). Always present: [] when fine and for closed reservations. A "
        "reservation with problems keeps its GPUs: release it and plan again"
    )
    status = serializers.ChoiceField(
        source="status_now",
        choices=Reservation.Status.choices,
        read_only=True,
        help_text="As of now: an active reservation past expires_at is expired",
    )
    active = serializers.BooleanField(source="is_active", read_only=True)
    request = StoredRequestSerializer(read_only=True, help_text="The placement request that produced the plan")
    candidate = StoredCandidateSerializer(read_only=True, help_text="The accepted candidate as the plan showed it")

    class Meta:
        model = Reservation
        fields = ["id", "vm_name", "host", "host_id", "vcenter", "status", "active", "problems", "request",
                  "candidate", "created", "expires_at", "closed_at", "close_reason"]  # fmt: skip

    def get_host(self, reservation: Reservation) -> str:
        return reservation.host.name if reservation.host_id else reservation.host_name

    def get_vcenter(self, reservation: Reservation) -> str:
        return reservation.vcenter.name if reservation.vcenter_id else reservation.vcenter_name

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_problems(self, reservation: Reservation) -> list[str]:
        return problems_of(reservation)  # the views read them for a whole page at once (attach_problems)


CONFLICT_CODES = {
    "no_capacity": "no host in scope can take the request (detail gives the hosts' reasons): retrying the same "
    "request will not help",
    "contention": "concurrent reservations kept taking the chosen GPUs through every retry: retry later",
    "changed": "the candidate chosen with host_id and pci_ids is no longer what its host offers (detail says what "
    "changed): plan again",
    "name_taken": "vm_name already holds an active reservation in the host's vCenter (reservation_id is that "
    "reservation: a retry whose first request got through finds it there): use it, release it or choose another "
    "name",
    "name_in_use": "vm_name is a VM in the host's vCenter that already uses GPUs (vm_id is that VM): a reservation "
    "under its name would move it and add devices to it; choose the name of a new VM",
}


class ConflictSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=list(CONFLICT_CODES),
        help_text="What to do next, without reading detail: "
        + "; ".join(f"{code}: {text}" for code, text in CONFLICT_CODES.items()),
    )
    detail = serializers.CharField(help_text="Why nothing was reserved, in a sentence")
    reservation_id = serializers.IntegerField(
        required=False, help_text="name_taken only: the id of the active reservation that holds vm_name"
    )
    vm_id = serializers.IntegerField(
        required=False, help_text="name_in_use only: the id of the VM (/api/vms/{id}/) that has vm_name and uses GPUs"
    )


class IdempotencyConflictSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=["idempotency_key_reused"],
        help_text="The Idempotency-Key was sent before with another body: nothing reserved",
    )
    detail = serializers.CharField(help_text="The key, when it was used and what it made, in a sentence")
    reservation_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="The reservations the key's first request made"
    )


class ReleaseConflictSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[Reservation.Status.EXPIRED.value, Reservation.Status.CONSUMED.value],
        help_text="Why the hold had already ended: expired (its GPUs were free for other plans since expires_at) "
        "or consumed (a sync found its VM holding GPUs on its host)",
    )
    status = serializers.ChoiceField(
        choices=Reservation.Status.choices, help_text="The reservation's status as of now (unchanged by the call)"
    )
    detail = serializers.CharField(help_text="The same in a sentence")


class RenewSerializer(KnownFieldsOnly):
    ttl_minutes = serializers.IntegerField(
        min_value=1,
        max_value=TTL_MAX_MINUTES,
        help_text=f"The hold's new lifetime from now, in minutes (1 to {TTL_MAX_MINUTES}, as when reserving): "
        "expires_at becomes now + ttl_minutes (shorter than before is allowed)",
    )


class RenewConflictSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[
            s.value for s in (Reservation.Status.EXPIRED, Reservation.Status.CONSUMED, Reservation.Status.RELEASED)
        ],
        help_text="Why the hold cannot be renewed: expired (its GPUs were free for other plans since expires_at: "
        "reserve again), consumed (a sync found its VM) or released",
    )
    status = serializers.ChoiceField(
        choices=Reservation.Status.choices, help_text="The reservation's status as of now (unchanged by the call)"
    )
    detail = serializers.CharField(help_text="The same in a sentence")


class EvacuationSearchSerializer(serializers.Serializer):
    method = serializers.CharField(help_text='"exact" (every assignment considered) or "bounded" (see note)')
    nodes = serializers.IntegerField(help_text="Host rankings made")
    optimal = serializers.BooleanField(help_text="The answer is proven to move the most VMs it can")
    upper_bound = serializers.IntegerField(help_text="No assignment moves more VMs than this")
    note = serializers.CharField()


class EvacuationMoveSerializer(serializers.Serializer):
    vm = serializers.CharField(
        help_text="The consumer's name: a VM's name in the host's vCenter, or \"reservation:<VM name>\" for an "
        "active reservation's hold (read kind, vm_name and reservation_id)"
    )
    kind = serializers.ChoiceField(
        choices=["vm", "reservation"], help_text="A VM to migrate, or an active reservation whose hold moves"
    )
    vm_name = serializers.CharField(help_text="The VM's name; for a reservation, the name of the VM it is for")
    reservation_id = serializers.IntegerField(allow_null=True, help_text="The reservation's id; null for a VM")
    from_gpus = serializers.ListField(child=serializers.CharField(), help_text="PCI addresses it holds now")
    target = CandidateSerializer(allow_null=True, help_text="Where it goes; null when it cannot move")
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Why it cannot move, or notes")


class CannotMoveSerializer(serializers.Serializer):
    vm = serializers.CharField()
    kind = serializers.ChoiceField(choices=["vm", "reservation"])
    vm_name = serializers.CharField()
    reservation_id = serializers.IntegerField(allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField())


class EvacuationSerializer(serializers.Serializer):
    host = serializers.CharField()
    host_id = serializers.IntegerField(allow_null=True)
    vcenter = serializers.CharField()
    complete = serializers.BooleanField(help_text="Every GPU VM of the host has a target")
    search = EvacuationSearchSerializer(allow_null=True)
    moves = EvacuationMoveSerializer(many=True, help_text="One per GPU VM of the host")
    cannot_move = CannotMoveSerializer(many=True, help_text="The VMs without a target, with the reasons")

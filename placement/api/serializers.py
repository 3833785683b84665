from rest_framework import serializers

from placement.engine.request import CONSUMPTIONS, INTERCONNECTS, MAX_GPUS_PER_VM
from placement.models import Reservation


class PlanRequestSerializer(serializers.Serializer):
    gpus_per_vm = serializers.IntegerField(min_value=1, max_value=MAX_GPUS_PER_VM)
    consumption = serializers.ChoiceField(choices=CONSUMPTIONS, required=False)
    profile = serializers.CharField(required=False, allow_null=True, max_length=120)
    vms = serializers.IntegerField(min_value=1, max_value=256, default=1)
    board = serializers.CharField(required=False, allow_null=True, max_length=40)
    min_framebuffer_gb = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    interconnect = serializers.ChoiceField(choices=INTERCONNECTS, default="any")
    vcpus = serializers.IntegerField(min_value=0, default=0)
    memory_mb = serializers.IntegerField(min_value=0, default=0)
    anti_affinity = serializers.BooleanField(default=False)
    clusters = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000)


class ReserveSerializer(PlanRequestSerializer):
    vm_name = serializers.CharField(max_length=255)
    ttl_minutes = serializers.IntegerField(required=False, min_value=1, max_value=7 * 24 * 60)


class ReservationSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name", read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = Reservation
        fields = ["id", "vm_name", "host", "status", "active", "request", "candidate", "created", "expires_at",
                  "closed_at"]  # fmt: skip

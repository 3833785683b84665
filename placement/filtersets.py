"""Filters of the reservations list (``/api/reservations/?status=active&vcenter=prod``)."""

import django_filters

from placement.models import Reservation


class ReservationFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Reservation.Status.choices)
    vm_name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the VM name")
    host_id = django_filters.NumberFilter(
        field_name="host_id", help_text="Host primary key", min_value=1, max_value=2**63 - 1
    )
    vcenter = django_filters.CharFilter(field_name="host__vcenter__name", help_text="vCenter name")
    ordering = django_filters.OrderingFilter(
        fields=(("created", "created"), ("expires_at", "expires_at"), ("vm_name", "vm_name"), ("status", "status")),
        help_text="created, expires_at, vm_name or status; prefix - for descending",
    )

    class Meta:
        model = Reservation
        fields = ["status", "vm_name", "host_id", "vcenter"]

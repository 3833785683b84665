"""FilterSet of the reservation list (minimal: status, VM name, host name, vCenter)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from placement.models import Reservation


class ReservationFilterSet(django_filters.FilterSet):
    """Filters a queryset annotated with ``effective_status`` (``placement.tables.reservations_with_status``)."""

    status = django_filters.ChoiceFilter(
        choices=Reservation.Status.choices, method="filter_status", label="Status", empty_label="any status"
    )
    vm_name = django_filters.CharFilter(lookup_expr="icontains", label="VM name")
    host = django_filters.CharFilter(field_name="host__name", lookup_expr="icontains", label="Host")
    vcenter = django_filters.CharFilter(field_name="host__vcenter__name", lookup_expr="iexact", label="vCenter")

    class Meta:
        model = Reservation
        fields = ["status", "vm_name", "host", "vcenter"]

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(effective_status=value)

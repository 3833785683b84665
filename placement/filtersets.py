"""Filters of the reservations list (``/api/reservations/?status=active&vcenter=prod``)."""

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django_filters.constants import EMPTY_VALUES
from django_filters.fields import BaseCSVField

from inventory.api.ordering import with_tie_breaker
from inventory.filtersets import CountFilter, VCenterChoiceField, YesNoFilter
from inventory.models import Host, VCenter
from placement.models import Reservation
from placement.reservation_health import needing_attention, not_needing_attention


class OrderingKeysField(BaseCSVField):
    """The ordering keys, comma-separated; unknown ones are refused naming the keys taken, as the inventory lists'
    ``StrictOrderingFilter`` words it (Django's "Select a valid choice" named neither)."""

    def clean(self, value):
        if value not in self.empty_values:
            keys = [str(key) for key, _ in self.choices if key and not str(key).startswith("-")]
            unknown = [term for term in value if term and term.removeprefix("-") not in keys]
            if unknown:
                raise forms.ValidationError(
                    "cannot order by %(unknown)s: use %(keys)s (prefix - for descending)",
                    code="invalid_choice",
                    params={"unknown": ", ".join(map(repr, unknown)), "keys": ", ".join(keys)},
                )
        return super().clean(value)


class ReservationVCenterField(forms.CharField):
    """A vCenter id or name, or the name of a removed vCenter that reservations still carry (their history stays
    searchable); anything else is refused, as the inventory lists refuse it (a typo answered an empty list)."""

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return value
        try:
            VCenterChoiceField(queryset=VCenter.objects.all()).clean(value)
        except forms.ValidationError as exc:
            removed = Reservation.objects.filter(vcenter__isnull=True, vcenter_name__iexact=value.strip())
            if exc.code == "ambiguous" or not removed.exists():
                raise
        return value


class ReservationVCenterFilter(django_filters.CharFilter):
    field_class = ReservationVCenterField


class HostIdField(forms.IntegerField):
    """A host primary key that exists (an unknown one answered an empty list, as if the host had none)."""

    def clean(self, value):
        value = super().clean(value)
        if value is not None and not Host.objects.filter(pk=value).exists():
            raise forms.ValidationError("no host with id %(value)s", code="invalid_choice", params={"value": value})
        return value


class HostIdFilter(CountFilter):
    field_class = HostIdField


class TieBreakingOrderingFilter(django_filters.OrderingFilter):
    """Ends every asked order in the primary key, as the inventory lists do (``with_tie_breaker``)."""

    base_field_class = OrderingKeysField

    def filter(self, qs: QuerySet, value) -> QuerySet:
        if value in EMPTY_VALUES:
            return qs
        ordering = [self.get_ordering_value(param) for param in value if param not in EMPTY_VALUES]
        return qs.order_by(*with_tie_breaker(ordering))


class ReservationFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=Reservation.Status.choices,
        method="filter_status",
        help_text="The effective status: an active reservation past its expiry is expired",
    )
    vm_name = django_filters.CharFilter(
        lookup_expr="icontains",
        help_text="Part of the VM name (a substring, ignoring case: llm-1 also finds llm-10); vm_name_exact= for "
        "the whole name",
    )
    vm_name_exact = django_filters.CharFilter(
        field_name="vm_name",
        help_text="The whole VM name, exactly as written (case-sensitive, as vSphere keeps it); vm_name= for a "
        "substring",
    )
    # a whole number: ``1.5`` was read as 1
    host_id = HostIdFilter(field_name="host_id", help_text="Host primary key", min_value=1, max_value=2**63 - 1)
    # the spelling the gpus, vms and domains lists use
    host = HostIdFilter(
        field_name="host_id", help_text="Host primary key (the same filter as host_id)", min_value=1,
        max_value=2**63 - 1,
    )  # fmt: skip
    vcenter = ReservationVCenterFilter(
        method="filter_vcenter",
        help_text="vCenter id (as the other lists take it) or name, or the name of a removed vCenter",
    )
    needs_attention = YesNoFilter(
        method="filter_needs_attention",
        help_text="true: only active reservations the inventory changed under (a non-empty problems list); false: "
        "the others",
    )
    ordering = TieBreakingOrderingFilter(
        fields=(
            ("created", "created"),
            ("expires_at", "expires_at"),
            ("vm_name", "vm_name"),
            ("effective_status", "status"),
            ("id", "id"),
        ),
        help_text="created, expires_at, vm_name, status or id; prefix - for descending",
    )

    class Meta:
        model = Reservation
        fields = ["status", "vm_name", "vm_name_exact", "host_id", "host", "vcenter", "needs_attention"]

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(effective_status=value)  # the queryset is ``selectors.reservations_with_status``

    def filter_vcenter(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(vcenter_q(value))

    def filter_needs_attention(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return filter_needs_attention(queryset, value)


def filter_needs_attention(queryset: QuerySet, value: bool | None) -> QuerySet:
    """``needs_attention``: the reservations with problems (``placement.reservation_health``), or the others."""
    if value is None:
        return queryset
    return needing_attention(queryset) if value else not_needing_attention(queryset)


def vcenter_q(value: str) -> Q:
    """Reservations of the vCenter ``value`` names: its id (as the other lists take it) or its name (any case:
    names are unique regardless of case). Shared by the API's filter and the reservations page."""
    value = value.strip()
    removed = Q(vcenter__isnull=True, vcenter_name__iexact=value)  # the name kept when it was removed
    if value.isascii() and value.isdigit():  # str.isdigit() takes "²", which int() refuses
        return Q(vcenter_id=int(value)) | Q(vcenter__name__iexact=value) | removed
    return Q(vcenter__name__iexact=value) | removed

"""The reservation list page: a django-tables2 table and its FilterSet. The status shown and filtered is the
effective one (an active reservation past its expiry is expired even before housekeeping marks it)."""

from __future__ import annotations

import django_filters
import django_tables2 as tables
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from placement.filtersets import vcenter_q
from placement.models import Reservation


class ReservationTable(tables.Table):
    id = tables.Column(verbose_name="#", linkify=("placement:reservation_detail", [tables.A("pk")]))
    # names stay whole (a hyphen is no place to break "llama-70b-2"); the table scrolls in its box if it must
    vm_name = tables.Column(
        verbose_name="VM", linkify=("placement:reservation_detail", [tables.A("pk")]), attrs={"td": {"class": "nowrap"}}
    )
    effective_status = tables.Column(verbose_name="Status", order_by=("status", "expires_at"))
    host = tables.Column(verbose_name="Host", order_by=("host__name",), attrs={"td": {"class": "nowrap"}})
    vcenter = tables.Column(verbose_name="vCenter", accessor="host__vcenter__name", attrs={"td": {"class": "nowrap"}})
    gpus = tables.Column(verbose_name="GPUs", empty_values=(), orderable=False)
    kind = tables.Column(verbose_name="Consumption", accessor="request__consumption", orderable=False)
    created = tables.DateTimeColumn(format="Y-m-d H:i")
    expires_at = tables.DateTimeColumn(verbose_name="Expires", format="Y-m-d H:i")
    closed_at = tables.DateTimeColumn(verbose_name="Closed", format="Y-m-d H:i")

    class Meta:
        model = Reservation
        fields = ("id", "vm_name", "effective_status", "host", "vcenter", "gpus", "kind", "created", "expires_at",
                  "closed_at")  # fmt: skip
        order_by = ("-created",)
        attrs = {"class": "reservations"}
        row_attrs = {"data-status": lambda record: record.effective_status}
        empty_text = "No reservation matches. Reserve a candidate on the Placement page to hold its GPUs."

    def __init__(self, data, *args, **kwargs) -> None:
        data = data.select_related("host__vcenter").prefetch_related("items__gpu__pci_device")
        super().__init__(data, *args, **kwargs)

    def _when(self, value) -> str:
        # the date and the time each stay whole (a narrow column puts the time under the date)
        local = timezone.localtime(value)
        return format_html(
            '<span class="when"><span class="nowrap">{}</span> <span class="nowrap">{}</span></span>',
            f"{local:%Y-%m-%d}",
            f"{local:%H:%M}",
        )

    def render_created(self, value) -> str:
        return self._when(value)

    def render_expires_at(self, value) -> str:
        return self._when(value)

    def render_closed_at(self, value) -> str:
        return self._when(value)

    def render_effective_status(self, value: str) -> str:
        return format_html('<span class="status status-{}">{}</span>', value, value)

    def render_host(self, record: Reservation) -> str:
        url = reverse("inventory:host_detail", args=[record.host_id])
        return format_html('<a href="{}">{}</a>', url, record.host.name)

    def render_gpus(self, record: Reservation) -> str:
        items = sorted(record.items.all(), key=lambda i: i.gpu.pci_device.pci_id)
        return format_html_join(
            mark_safe("<br>"),
            '<code>{}</code> <span class="nowrap">{}</span>',
            ((i.gpu.pci_device.pci_id, i.profile) for i in items),
        )


class ReservationPageFilterSet(django_filters.FilterSet):
    """The page's filters: status is the effective one (``reservations_with_status``), as in the API, host by name
    (the API's ``placement.filtersets.ReservationFilterSet`` takes the host's key)."""

    status = django_filters.ChoiceFilter(
        choices=Reservation.Status.choices, method="filter_status", label="Status", empty_label="any status"
    )
    vm_name = django_filters.CharFilter(lookup_expr="icontains", label="VM name")
    host = django_filters.CharFilter(field_name="host__name", lookup_expr="icontains", label="Host")
    vcenter = django_filters.CharFilter(method="filter_vcenter", label="vCenter", help_text="id or name")

    class Meta:
        model = Reservation
        fields = ["status", "vm_name", "host", "vcenter"]

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(effective_status=value)

    def filter_vcenter(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(vcenter_q(value)) if value.strip() else queryset

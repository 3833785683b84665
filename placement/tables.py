"""The reservation list page: a django-tables2 table and its FilterSet. The status shown and filtered is the
effective one (an active reservation past its expiry is expired even before housekeeping marks it)."""

from __future__ import annotations

import django_filters
import django_tables2 as tables
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from inventory.filtersets import YesNoFilter
from placement.filtersets import filter_needs_attention, vcenter_q
from placement.models import Reservation
from placement.reservation_health import problems_by_reservation


class ReservationTable(tables.Table):
    id = tables.Column(verbose_name="#", linkify=("placement:reservation_detail", [tables.A("pk")]))
    # names stay whole (a hyphen is no place to break "llama-70b-2"); the table scrolls in its box if it must
    vm_name = tables.Column(
        verbose_name="VM", linkify=("placement:reservation_detail", [tables.A("pk")]), attrs={"td": {"class": "nowrap"}}
    )
    effective_status = tables.Column(verbose_name="Status", order_by=("status", "expires_at"))
    # active reservations the inventory changed under (placement.reservation_health), read for the page at once
    attention = tables.Column(verbose_name="Attention", empty_values=(), orderable=False)
    host = tables.Column(
        verbose_name="Host", order_by=("host_name",), empty_values=(), attrs={"td": {"class": "nowrap"}}
    )
    vcenter = tables.Column(
        verbose_name="vCenter", order_by=("vcenter_name",), empty_values=(), attrs={"td": {"class": "nowrap"}}
    )
    gpus = tables.Column(verbose_name="GPUs", empty_values=(), orderable=False)
    kind = tables.Column(verbose_name="Consumption", accessor="request__consumption", orderable=False)
    created = tables.DateTimeColumn(format="Y-m-d H:i")
    expires_at = tables.DateTimeColumn(verbose_name="Expires", format="Y-m-d H:i")
    closed_at = tables.DateTimeColumn(verbose_name="Closed", format="Y-m-d H:i")

    class Meta:
        model = Reservation
        fields = ("id", "vm_name", "effective_status", "attention", "host", "vcenter", "gpus", "kind", "created",
                  "expires_at", "closed_at")  # fmt: skip
        order_by = ("-created",)
        attrs = {"class": "reservations", "aria-label": "Reservations"}
        row_attrs = {"data-status": lambda record: record.effective_status}
        empty_text = "No reservation matches. Reserve a candidate on the Placement page to hold its GPUs."

    def __init__(self, data, *args, **kwargs) -> None:
        data = data.select_related("host", "vcenter").prefetch_related("items__gpu__pci_device")
        super().__init__(data, *args, **kwargs)
        self._problems: dict[int, list[str]] | None = None

    def problems(self, record: Reservation) -> list[str]:
        """The record's problems, read for every row of the page (or of the table, unpaginated) at once."""
        if self._problems is None:
            page = getattr(self, "page", None)
            rows = page.object_list if page is not None else self.data
            ids = [getattr(row, "record", row).pk for row in rows]
            self._problems = problems_by_reservation(scope=Reservation.objects.filter(pk__in=ids))
        return self._problems.get(record.pk, [])

    def render_attention(self, record: Reservation) -> str:
        problems = self.problems(record)
        if not problems:
            return ""
        return format_html(
            '<span class="badge warn needs-attention" title="{}">needs attention</span>', " ".join(problems)
        )

    def _when(self, value) -> str:
        # a DateTimeColumn renders None too, and localtime(None) is now: an open reservation has no "Closed"
        if value is None:
            return "\u2014"
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
        if record.host_id is None:
            return record.host_label
        url = reverse("inventory:host_detail", args=[record.host_id])
        return format_html('<a href="{}">{}</a>', url, record.host.name)

    def render_vcenter(self, record: Reservation) -> str:
        return record.vcenter_label

    def render_gpus(self, record: Reservation) -> str:
        items = sorted(record.items.all(), key=lambda i: i.pci_id)
        return format_html_join(
            mark_safe("<br>"),
            '<code>{}</code>{} <span class="nowrap">{}</span>',
            ((i.gpu.pci_device.pci_id if i.gpu else i.pci_id, "" if i.gpu else " (removed)", i.profile) for i in items),
        )


class ReservationPageFilterSet(django_filters.FilterSet):
    """The page's filters: status is the effective one (``reservations_with_status``), as in the API, host by name
    (the API's ``placement.filtersets.ReservationFilterSet`` takes the host's key)."""

    status = django_filters.ChoiceFilter(
        choices=Reservation.Status.choices, method="filter_status", label="Status", empty_label="any status"
    )
    vm_name = django_filters.CharFilter(lookup_expr="icontains", label="VM name")
    host = django_filters.CharFilter(method="filter_host", label="Host")
    vcenter = django_filters.CharFilter(method="filter_vcenter", label="vCenter", help_text="id or name")
    needs_attention = YesNoFilter(method="filter_needs_attention", label="Needs attention")

    class Meta:
        model = Reservation
        fields = ["status", "vm_name", "host", "vcenter", "needs_attention"]

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(effective_status=value)

    def filter_needs_attention(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return filter_needs_attention(queryset, value)

    def filter_host(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # the host's name now, or the one kept when it was removed
        return queryset.filter(Q(host__name__icontains=value) | Q(host__isnull=True, host_name__icontains=value))

    def filter_vcenter(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(vcenter_q(value)) if value.strip() else queryset

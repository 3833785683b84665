"""vCenters: list (everyone), add / edit / test / remove (admin role). Passwords are write-only."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from inventory import selectors, services
from inventory.forms import EMBEDDED_SCHEDULE, AcceptIdentityForm, VCenterForm, syncs_run_on_schedule
from inventory.models import VCenter
from inventory.removal import vcenter_removal_effects
from inventory.roles import ADMIN, has_role, role_required
from inventory.tables import BoundedRequestConfig, VCenterTable
from inventory.views.common import page_or_partial
from inventory.vsphere.connection import VCenterError

FORM_FIELDS = ("name", "url", "username", "verify_tls", "ca_file", "enabled", "sync_interval_minutes")


@require_safe
def vcenter_list(request: HttpRequest) -> HttpResponse:
    services.reap_before_reading()
    table = VCenterTable(selectors.vcenter_list(), can_admin=has_role(request.user, ADMIN), order_by="name")
    BoundedRequestConfig(request, paginate={"per_page": 50}).configure(table)
    context = {"table": table, "scheduled": syncs_run_on_schedule()}
    return page_or_partial(request, "inventory/vcenters/list.html", context, partials={"vcenters-table": "table"})


def _form_page(
    request: HttpRequest,
    form: VCenterForm,
    vcenter: VCenter | None,
    status: int = 200,
    identity_form: AcceptIdentityForm | None = None,
) -> HttpResponse:
    context = {"form": form, "vcenter": vcenter, "identity_form": identity_form or AcceptIdentityForm()}
    return render(request, "inventory/vcenters/form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def vcenter_create(request: HttpRequest) -> HttpResponse:
    form = VCenterForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                vcenter = services.register_vcenter(**form.cleaned_data)
            except ValidationError as exc:
                form.add_service_error(exc)
            except VCenterError as exc:  # a URL the connector cannot use
                form.add_error("url", exc.message)
            else:
                if not syncs_run_on_schedule():
                    when = f"{EMBEDDED_SCHEDULE} (here or on the Syncs page)."
                elif vcenter.enabled:
                    when = f"it syncs every {vcenter.sync_interval_minutes} min."
                else:
                    when = "its scheduled syncs are paused."
                messages.success(request, f"vCenter {vcenter.name} added; {when}")
                return redirect("inventory:vcenters")
        return _form_page(request, form, None, status=400)
    return _form_page(request, form, None)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def vcenter_edit(request: HttpRequest, pk: int) -> HttpResponse:
    vcenter = get_object_or_404(VCenter, pk=pk)
    form = VCenterForm(request.POST or None, instance=vcenter)
    if request.method == "POST":
        if form.is_valid():
            data = dict(form.cleaned_data)
            password = data.pop("password", "") or None
            try:
                services.update_vcenter(vcenter=vcenter, password=password, **{k: data[k] for k in FORM_FIELDS})
            except ValidationError as exc:
                form.add_service_error(exc)
            except VCenterError as exc:
                form.add_error("url", exc.message)
            else:
                messages.success(request, f"vCenter {vcenter.name} saved.")
                return redirect("inventory:vcenters")
        vcenter.refresh_from_db()  # the service may have set fields before refusing: show what is stored
        return _form_page(request, form, vcenter, status=400)
    return _form_page(request, form, vcenter)


@require_POST
@role_required(ADMIN)
def vcenter_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Log in to the vCenter and say what it is, or why it failed (htmx partial; a message otherwise)."""
    vcenter = get_object_or_404(VCenter, pk=pk)
    try:
        about = services.test_vcenter_connection(vcenter=vcenter)
        result = {"ok": True, "about": about}
    except VCenterError as exc:  # also a stored password no configured key decrypts (services.PasswordUnreadable)
        result = {"ok": False, "error": exc.message}
    if getattr(request, "htmx", None):
        return render(request, "inventory/vcenters/_test_result.html", {"vcenter": vcenter, "result": result})
    if result["ok"]:
        messages.success(request, f"{vcenter.name}: connected to {result['about']['full_name']}.")
    else:
        messages.error(request, f"{vcenter.name}: {result['error']}")
    return redirect("inventory:vcenters")


@require_POST
@role_required(ADMIN)
def vcenter_accept_identity(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept the vCenter now answering at the registration's URL after a sync refused its instance UUID
    (``services.accept_new_identity``): the edit page again with the reason when nothing changed."""
    vcenter = get_object_or_404(VCenter, pk=pk)
    identity_form = AcceptIdentityForm(request.POST)
    if identity_form.is_valid():
        try:
            old, new = services.accept_new_identity(vcenter=vcenter, expected=identity_form.cleaned_data["expect"])
        except (VCenterError, services.IdentityUnchanged) as exc:
            identity_form.add_error("expect", getattr(exc, "message", str(exc)))
        else:
            messages.success(
                request,
                f"vCenter {vcenter.name}: instance UUID {new} accepted (was {old or 'none'}); the next sync applies "
                "its inventory, and hosts and VMs of the old vCenter become stale.",
            )
            return redirect("inventory:vcenters")
    return _form_page(request, VCenterForm(instance=vcenter), vcenter, status=400, identity_form=identity_form)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def vcenter_delete(request: HttpRequest, pk: int) -> HttpResponse:
    vcenter = get_object_or_404(VCenter, pk=pk)
    effects = vcenter_removal_effects(vcenter)  # what other apps lose with it (placement: its reservations)
    if request.method == "POST":
        name = vcenter.name
        services.remove_vcenter(vcenter=vcenter)
        also = "".join(f" {text}" for text in effects)
        messages.success(request, f"vCenter {name} removed with its inventory and its sync schedule.{also}")
        return redirect("inventory:vcenters")
    counts = {
        "hosts": vcenter.hosts.count(),
        "clusters": vcenter.clusters.count(),
        "vms": vcenter.vms.count(),
        "runs": vcenter.sync_runs.count(),
    }
    context = {"vcenter": vcenter, "counts": counts, "effects": effects}
    return render(request, "inventory/vcenters/delete.html", context)

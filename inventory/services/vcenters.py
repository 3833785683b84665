"""Registering, changing, testing and removing vCenters, and their beat schedules."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from inventory.crypto import SecretDecryptionError
from inventory.models import VCenter
from inventory.validators import password_needed
from inventory.vsphere.connection import Endpoint, VCenterConfigError


class PasswordUnreadable(VCenterConfigError):
    """The stored password cannot be decrypted with the configured keys (FIELD_ENCRYPTION_KEY changed)."""


def endpoint_for(vcenter: VCenter) -> Endpoint:
    """How to connect to ``vcenter``; PasswordUnreadable (a VCenterError) when its stored password is unreadable."""
    try:
        password = vcenter.get_password()
    except SecretDecryptionError as exc:
        raise PasswordUnreadable(f"{vcenter.url}: {exc}") from None
    return Endpoint(
        url=vcenter.url,
        username=vcenter.username,
        password=password,
        verify_tls=vcenter.verify_tls,
        ca_file=vcenter.ca_file,
        timeout=float(settings.VCENTER_CONNECT_TIMEOUT),
    )


# Any constant: the PostgreSQL advisory lock that serialises the "one vCenter per server" check with its write.
_VCENTER_SERVER_LOCK = 0x76635352


def lock_vcenter_servers() -> None:
    """Hold, until the transaction ends, the lock under which a vCenter's URL is checked against the others' and
    saved: without it two concurrent adds of one server could both pass ``VCenter.validate_unique``. SQLite write
    transactions are IMMEDIATE, which serialises them already."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_VCENTER_SERVER_LOCK])


@transaction.atomic
def register_vcenter(
    *,
    name: str,
    url: str,
    username: str,
    password: str,
    verify_tls: bool = True,
    ca_file: str = "",
    sync_interval_minutes: int | None = None,
    enabled: bool = True,
) -> VCenter:
    vcenter = VCenter(
        name=name,
        url=url,
        username=username,
        verify_tls=verify_tls,
        ca_file=ca_file,
        enabled=enabled,
        sync_interval_minutes=(
            settings.VCENTER_DEFAULT_SYNC_MINUTES if sync_interval_minutes is None else sync_interval_minutes
        ),
    )
    vcenter.set_password(password)
    lock_vcenter_servers()
    # the field validators check the URL and the CA file as the connection will use them; validate_unique that no
    # other vCenter has the same server
    vcenter.full_clean()
    vcenter.save()  # the receiver creates its beat schedule
    return vcenter


SYNC_TASK = "inventory.tasks.sync_vcenter_task"
VCENTER_FIELDS = ("name", "url", "username", "verify_tls", "ca_file", "enabled", "sync_interval_minutes")


def _schedule_kwargs(vcenter_id: int) -> str:
    return f'{{"vcenter_id": {vcenter_id}, "trigger": "schedule"}}'


def schedule_vcenter_sync(*, vcenter: VCenter) -> None:
    """Create or update the django-celery-beat periodic task that syncs this vCenter.

    Called on every save of a VCenter (``inventory.receivers``), so the page, the API, the admin and the
    command all keep the schedule in step; a renamed vCenter keeps one task, under its new name.
    """
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(
        every=vcenter.sync_interval_minutes, period=IntervalSchedule.MINUTES
    )
    name = f"sync vCenter {vcenter.name}"
    kwargs = _schedule_kwargs(vcenter.pk)
    PeriodicTask.objects.filter(task=SYNC_TASK, kwargs=kwargs).exclude(name=name).delete()
    task = PeriodicTask.objects.filter(name=name).first()
    wanted = {"task": SYNC_TASK, "interval_id": interval.pk, "kwargs": kwargs, "enabled": vcenter.enabled}
    if task is None:
        PeriodicTask.objects.create(name=name, **wanted)
    elif any(getattr(task, k) != v for k, v in wanted.items()):
        for k, v in wanted.items():
            setattr(task, k, v)
        task.save()  # PeriodicTask.save also tells beat that the schedule changed


def unschedule_vcenter_sync(*, vcenter_id: int) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(task=SYNC_TASK, kwargs=_schedule_kwargs(vcenter_id)).delete()


@transaction.atomic
def update_vcenter(*, vcenter: VCenter, password: str | None = None, **fields: Any) -> VCenter:
    """Change a vCenter's settings; an empty or missing ``password`` keeps the stored one, but only for the same
    server verified the same way: a URL to another scheme, host or port, TLS verification turned off or another CA
    file needs the password again (``inventory.validators.password_needed``).

    Raises ValidationError naming the field; nothing is saved then.
    """
    unknown = sorted(set(fields) - set(VCENTER_FIELDS))
    if unknown:
        raise ValidationError({unknown[0]: "is not a vCenter setting"})
    needs_password = None
    if not password and {"url", "verify_tls", "ca_file"} & set(fields):
        # The stored row, not the instance: a caller may have changed the instance's fields already.
        stored = (
            VCenter.objects.filter(pk=vcenter.pk)
            .values_list("url", "verify_tls", "ca_file", "password_encrypted")
            .first()
        )
        if stored and stored[3]:
            needs_password = password_needed(url=stored[0], verify_tls=stored[1], ca_file=stored[2], changes=fields)
    for key, value in fields.items():
        setattr(vcenter, key, value)
    if password:
        vcenter.set_password(password)
    if "url" in fields:
        lock_vcenter_servers()
    errors: dict[str, list[str]] = {}
    try:
        # A stored URL or CA file left out of the change is not checked again: a row saved before these checks
        # existed (an http:// URL), or whose CA file has since gone, can still be disabled or renamed; connecting
        # names the problem until it is fixed.
        vcenter.full_clean(exclude=[f for f in ("url", "ca_file") if f not in fields])
    except ValidationError as exc:
        errors = exc.message_dict
    if needs_password and "url" not in errors:  # a URL that is not valid is reported first, alone
        errors["password"] = [needs_password]
    if errors:
        raise ValidationError(errors)
    vcenter.save()
    return vcenter


def test_vcenter_connection(*, vcenter: VCenter) -> dict[str, str]:
    """Log in and return what the vCenter says about itself; raises VCenterError with a safe message
    (PasswordUnreadable when the stored password cannot be decrypted)."""
    from inventory.vsphere.connection import connect

    with connect(endpoint_for(vcenter)) as si:
        about = si.content.about
        return {
            "full_name": str(about.fullName),
            "version": str(about.version),
            "api_version": str(about.apiVersion),
            "api_type": str(about.apiType),
        }


@transaction.atomic
def remove_vcenter(*, vcenter: VCenter) -> None:
    vcenter.delete()  # the receiver removes its beat schedule

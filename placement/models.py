"""Reservations: an accepted plan holds its GPUs (or vGPU/MIG slots) until the VM appears or the TTL ends."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Reservation(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CONSUMED = "consumed", "Consumed (the VM appeared)"
        EXPIRED = "expired", "Expired"
        RELEASED = "released", "Released"

    vm_name = models.CharField(max_length=255, help_text="Name the VM will have in vCenter")
    # Host and vCenter are kept by name too: removing them from the inventory (a vCenter removed, a stale host
    # purged) keeps the reservation's history, with the names it had (placement.receivers releases active ones).
    host = models.ForeignKey(
        "inventory.Host", on_delete=models.SET_NULL, null=True, blank=True, related_name="reservations"
    )
    # the host's vCenter, kept on the row so the database holds one active reservation per VM name and vCenter
    # (VM names repeat across vCenters)
    vcenter = models.ForeignKey("inventory.VCenter", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    host_name = models.CharField(max_length=255, blank=True, help_text="The host's name when reserved or removed")
    vcenter_name = models.CharField(max_length=100, blank=True, help_text="The vCenter's name when reserved or removed")
    request = models.JSONField(help_text="The placement request that produced the plan")
    candidate = models.JSONField(help_text="The accepted candidate as the plan showed it")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(
        max_length=500, blank=True, help_text="Why the hold ended when the advisor ended it (its vCenter was removed)"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # the API request (its Idempotency-Key) that made this reservation; every replica of one request links to it
    idempotency_request = models.ForeignKey(
        "ReservationRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="reservations"
    )

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["vcenter", "vm_name"],
                condition=models.Q(status="active"),
                name="one_active_reservation_per_vm_and_vcenter",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vm_name} on {self.host_label} ({self.status})"

    def save(self, *args, **kwargs) -> None:
        if self.host_id is not None:
            if self.vcenter_id is None:
                self.vcenter_id = self.host.vcenter_id
            if not self.host_name:
                self.host_name = self.host.name
        if self.vcenter_id is not None and not self.vcenter_name:
            self.vcenter_name = self.vcenter.name
        super().save(*args, **kwargs)

    @property
    def host_label(self) -> str:
        """The host's name now, or the name it had with "(removed)" once it left the inventory."""
        if self.host_id is not None:
            return self.host.name
        return f"{self.host_name or 'unknown host'} (removed)"

    @property
    def vcenter_label(self) -> str:
        """The vCenter's name now, or the name it had with "(removed)" once it was removed."""
        if self.vcenter_id is not None:
            return self.vcenter.name
        return f"{self.vcenter_name or 'unknown vCenter'} (removed)"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE and self.expires_at > timezone.now()

    @property
    def status_now(self) -> str:
        """The status as of now: active past ``expires_at`` is expired before housekeeping stores it."""
        if self.status == self.Status.ACTIVE and not self.is_active:
            return self.Status.EXPIRED
        return self.status


class ReservationRequest(models.Model):
    """An ``Idempotency-Key`` a user sent with ``POST /api/reservations/``: a retry with the same key and body
    answers the reservations linked to it instead of reserving again (``services.reserve_once``).

    Written in the transaction that makes the reservations, so a failed request leaves no key behind; the unique
    constraint makes a concurrent retry wait for the first and then answer its reservations. A key is matched for
    IDEMPOTENCY_KEY_HOURS; an older one is deleted when the same user sends it again."""

    key = models.CharField(max_length=255)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    body_hash = models.CharField(max_length=64, help_text="SHA-256 of the request's canonical JSON body")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["created_by", "key"], name="one_idempotency_key_per_user"),
        ]

    def __str__(self) -> str:
        return f"Idempotency-Key {self.key!r} of user {self.created_by_id}"


class ReservationItem(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="items")
    gpu = models.ForeignKey(
        "inventory.Gpu", on_delete=models.SET_NULL, null=True, blank=True, related_name="reservation_items"
    )
    pci_id = models.CharField(max_length=16, blank=True, help_text="The GPU's PCI address (kept when it is removed)")
    kind = models.CharField(max_length=24)
    profile = models.CharField(max_length=100, blank=True)
    placement_gb = models.PositiveIntegerField(null=True, blank=True)
    mig_slot = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["reservation", "gpu"]
        constraints = [models.UniqueConstraint(fields=["reservation", "gpu"], name="one_item_per_gpu")]

    def __str__(self) -> str:
        return f"{self.reservation.vm_name} holds {self.gpu if self.gpu_id else f'{self.pci_id} (removed)'}"

    def save(self, *args, **kwargs) -> None:
        if self.gpu_id is not None and not self.pci_id:
            self.pci_id = self.gpu.pci_device.pci_id
        super().save(*args, **kwargs)


class HostSnapshot(models.Model):
    """A host's fabric as the planner reads it (``placement.selectors.HostTemplate``), stored under the host's
    ``fabric_hash``: a fresh process reads one row per host instead of its GPU, link and domain rows.

    Written by the planner the first time it reads a host with a new hash; a row whose hash differs from the
    host's is ignored (and replaced on the next read).
    """

    host = models.OneToOneField("inventory.Host", on_delete=models.CASCADE, primary_key=True, related_name="+")
    fabric_hash = models.CharField(max_length=40)
    shape = models.CharField(
        max_length=40, blank=True, default="", db_index=True, help_text="Digest of the host's HostShape"
    )
    data = models.JSONField(help_text="GPUs and their primary keys (placement.snapshot_codec)")

    def __str__(self) -> str:
        return f"snapshot of host {self.host_id} ({self.fabric_hash[:8]})"


class HostShape(models.Model):
    """Links, NVSwitch partitions and topology signature by GPU position, stored once for all the hosts of one
    type (``HostSnapshot.shape``). Shapes no snapshot refers to are deleted when snapshots are stored."""

    digest = models.CharField(max_length=40, primary_key=True)
    data = models.JSONField(help_text="Links, partitions and topology signature (placement.snapshot_codec)")

    def __str__(self) -> str:
        return f"host shape {self.digest[:8]}"


class WhatIfRun(models.Model):
    """A capacity what-if (``placement.whatif``): its parameters, progress while it runs, and its report."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Finished"
        FAILED = "failed", "Failed"

    params = models.JSONField(help_text="The validated what-if parameters")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress_current = models.PositiveIntegerField(default=0, help_text="Runs done")
    progress_total = models.PositiveIntegerField(default=0, help_text="Runs to do (comparisons included)")
    result = models.JSONField(null=True, blank=True, help_text="The report once finished")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"what-if #{self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCESS, self.Status.FAILED)

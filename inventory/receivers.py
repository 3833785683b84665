"""Keeps each vCenter's beat schedule in step with the row, whichever path saved or deleted it; revokes a user's
API tokens when their password changes."""

from __future__ import annotations

from knox.models import AuthToken

from inventory import services
from inventory.models import VCenter


def vcenter_saved(sender, instance: VCenter, raw: bool = False, **kwargs) -> None:
    if raw:  # loaddata
        return
    services.schedule_vcenter_sync(vcenter=instance)


def vcenter_deleted(sender, instance: VCenter, **kwargs) -> None:
    services.unschedule_vcenter_sync(vcenter_id=instance.pk)


def user_saved(sender, instance, created: bool = False, raw: bool = False, update_fields=None, **kwargs) -> None:
    """A new password revokes every API token of the user, as it signs out their sessions (whose hash includes
    the password): a token got with the old password must not outlive it.

    ``_password`` holds the new raw password from ``set_password`` until the save completes (Django's own
    ``password_changed`` hook reads it); a hasher upgrade on sign-in clears it first, so that keeps the tokens.
    """
    if raw or created or getattr(instance, "_password", None) is None:
        return
    if update_fields is not None and "password" not in update_fields:  # the new password was not saved
        return
    AuthToken.objects.filter(user_id=instance.pk).delete()

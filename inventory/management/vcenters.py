"""The vCenter a command names, by its ``NAME`` argument or by ``--vcenter``: one lookup and one wording for all.

Names are compared ignoring case, as ``vcenter add`` does when it refuses ``VC1`` next to ``vc1`` (the model's
unique constraint is on the lower-cased name, so at most one vCenter matches).
"""

from __future__ import annotations

from django.core.management.base import CommandError

from inventory.models import VCenter


def resolve_vcenter(name: str, *, option: str = "--vcenter") -> VCenter:
    """The vCenter called ``name`` (any case); a CommandError naming ``option`` and listing the names otherwise."""
    vcenter = VCenter.objects.filter(name__iexact=name).first()
    if vcenter is None:
        choices = ", ".join(VCenter.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise CommandError(f"{option}: no vCenter named {name!r}; choices: {choices}")
    return vcenter

"""Checks shared by every path that stores a vCenter (model, page form, admin, API, ``manage.py vcenter``).

The rules live next to the connection code (``inventory.vsphere.connection``), which applies the same ones when it
connects; these wrap them as Django validators so each path reports them on the field.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from inventory.vsphere.checks import ca_file_problem, sdk_url_problem


def validate_vcenter_url(value: str) -> None:
    """An https:// SDK URL whose host is a short or dotted name, an IPv4 or a bracketed IPv6 address."""
    if problem := sdk_url_problem(value):
        raise ValidationError(problem, code="invalid")


def validate_ca_file(value: str) -> None:
    """A CA bundle this process can read and load as PEM certificates, as the connection will load it."""
    if value and (problem := ca_file_problem(value)):
        raise ValidationError(problem, code="invalid")

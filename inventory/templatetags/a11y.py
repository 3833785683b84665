"""Form controls tied to an error the page draws apart from them (a form-wide error, such as a refused login)."""

from __future__ import annotations

from django import template
from django.forms import BoundField
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def invalid_with(field: BoundField, error_id: str) -> SafeString:
    """The field's control marked invalid and described by the element ``error_id``."""
    return field.as_widget(attrs={"aria-invalid": "true", "aria-describedby": error_id})

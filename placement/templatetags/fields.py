"""Form controls of the placement pages tied to the boxes their errors are written in."""

from __future__ import annotations

from django import template
from django.forms import BoundField
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def with_error_box(field: BoundField) -> SafeString:
    """The field's control described by its help (when it has one) and by ``#error-<name>``, the box both the
    page and the htmx answers (out of band) write its errors in; Django's default names ``<id>_error``, a list these
    pages do not draw."""
    described = [f"{field.auto_id}_helptext"] if field.help_text else []
    described.append(f"error-{field.name}")
    return field.as_widget(attrs={"aria-describedby": " ".join(described)})

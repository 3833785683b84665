"""Filters for how text may wrap in narrow table cells."""

from __future__ import annotations

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def keep_hyphenated(text: object) -> SafeString:
    """The text, free to wrap between words, with each hyphenated word kept on one line: a browser breaks
    "same-size" after its hyphen, which reads as two words."""
    words = str(text).split(" ")
    return mark_safe(  # noqa: S308 - every part is escaped by conditional_escape or format_html
        " ".join(format_html('<span class="nowrap">{}</span>', w) if "-" in w else conditional_escape(w) for w in words)
    )

"""The definitions of the GPU counts, shown as text beside the cards and lists that count them."""

from __future__ import annotations

from django import template

from inventory.occupancy import COUNT_TERMS

register = template.Library()


@register.inclusion_tag("inventory/_count_terms.html")
def count_terms() -> dict:
    """A disclosure listing what free, in use, partly used, reserved, unavailable, siloed and stranded mean; each
    definition's id is ``term-<id>``, for the counts' ``aria-describedby``."""
    return {"terms": COUNT_TERMS}

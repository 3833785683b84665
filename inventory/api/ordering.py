"""``?ordering=`` for the inventory lists: an unknown field is a 400 naming ``ordering`` and the fields it takes.

DRF's OrderingFilter drops unknown fields silently, so a typo gave the default order without a word. The
reservations list (django-filter's OrderingFilter) already answers 400; these lists now do the same.
"""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter


def with_tie_breaker(terms: list[str]) -> list[str]:
    """``terms`` ending in the primary key: rows that tie on the asked fields keep one order from page to page (a
    limit/offset page of ``?ordering=model`` repeated some GPUs and never showed others)."""
    if not terms or any(term.removeprefix("-") in ("id", "pk") for term in terms):
        return terms
    return [*terms, "pk"]


class StrictOrderingFilter(OrderingFilter):
    ordering_description = "Fields to order by, comma-separated; prefix - for descending"

    def remove_invalid_fields(self, queryset, fields, view, request) -> list[str]:
        valid = [item[0] for item in self.get_valid_fields(queryset, view, {"request": request})]
        terms = [term for term in fields if term]  # "name," has an empty last term
        unknown = [term for term in terms if term.removeprefix("-") not in valid]
        if unknown:
            listed = ", ".join(repr(term) for term in unknown)
            raise ValidationError(
                {self.ordering_param: [f"cannot order by {listed}: use {', '.join(valid)} (prefix - for descending)"]}
            )
        return with_tie_breaker(terms)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        fields = getattr(view, "ordering_fields", None)
        if not isinstance(fields, list | tuple):
            return super().get_schema_operation_parameters(view)
        names = [f if isinstance(f, str) else f[0] for f in fields]
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": self.ordering_description,
                "schema": {"type": "array", "items": {"type": "string", "enum": [*names, *(f"-{n}" for n in names)]}},
                "style": "form",
                "explode": False,
            }
        ]

"""What every /api/ endpoint refuses rather than guesses: input the server cannot read is a 400 naming it.

- ``StrictCharField`` / ``StrictURLField``: a JSON number or boolean where text is expected is refused (DRF's own
  CharField turns ``12345`` into ``"12345"``, so a password sent as a number was stored as its digits).
- ``KnownFieldsOnly``: a body field the endpoint does not have (a typo such as ``enable`` for ``enabled``) or one
  it only shows (``id``, ``last_sync_status``) is a 400 naming it, together with every other field's error; an
  update may send a shown field back with the value it has (GET, change a field, PUT). In a JSON body its
  whole-number, number and true/false fields (and ids) take JSON numbers and booleans only (``json_type_problem``):
  DRF reads ``"2"`` and ``2.0`` as 2 and ``"yes"`` as true. Form-encoded bodies are text and stay as DRF reads them.
- ``KnownQueryParams`` (a filter backend, first in a list's ``filter_backends``): a query parameter the list does
  not take (``?state=`` before it was a filter, ``?clusterr=``) is a 400 naming it and the parameters it takes;
  an empty value of a filter with fixed choices (``?kind=``) or of ``?ordering=`` is a 400 naming the choices.
- ``CheckedFormat`` (a view mixin): ``?format=`` naming no format the endpoint answers in is a 400 naming
  ``format`` and the choices, not DRF's bare 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import django_filters
from django.db import models
from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend, OrderingFilter, SearchFilter
from rest_framework.settings import api_settings

NOT_A_STRING = "Not a valid string: send text in double quotes, not a {kind}."
# Sent by the browsable API's HTML forms beside the fields themselves.
FORM_EXTRAS = frozenset({"csrfmiddlewaretoken"})


NOT_AN_INTEGER = 'Not a valid integer: send a whole number without quotes (2, not "2"), not a {kind}.'
NOT_A_WHOLE_NUMBER = (
    "Not a valid integer: send a whole number without a decimal point (2, not 2.0), not a number with a decimal point."
)
NOT_A_NUMBER = "Not a valid number: send a number without quotes, not a {kind}."
NOT_A_BOOLEAN = "Not a valid boolean: send true or false without quotes, not a {kind}."
NOT_AN_ID = "Not a valid id: send the id as a whole number without quotes, not a {kind}."
_INTEGER_KEYS = (models.AutoField, models.BigAutoField, models.SmallAutoField, models.IntegerField)


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false value"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return "value of another type"


class StrictStringMixin:
    """Refuses anything but a string (DRF's CharField coerces numbers)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise ValidationError(NOT_A_STRING.format(kind=_json_kind(data)), code="invalid")
        return super().to_internal_value(data)


class StrictCharField(StrictStringMixin, serializers.CharField):
    pass


class StrictURLField(StrictStringMixin, serializers.URLField):
    pass


class StrictSlugField(StrictStringMixin, serializers.SlugField):
    pass


class StrictChoiceField(StrictStringMixin, serializers.ChoiceField):
    """A choice given as text only (DRF's ChoiceField reads ``1`` as ``"1"``)."""


STRICT_TEXT_FIELDS = {
    serializers.CharField: StrictCharField,
    serializers.URLField: StrictURLField,
    serializers.SlugField: StrictSlugField,
}


class StrictModelSerializerMixin:
    """A ModelSerializer mixin: the text fields it builds from the model refuse non-strings."""

    serializer_field_mapping = {
        model_field: STRICT_TEXT_FIELDS.get(field, field)
        for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()
    }
    serializer_choice_field = StrictChoiceField


def _takes_integer_keys(field: serializers.PrimaryKeyRelatedField) -> bool:
    queryset = field.queryset
    return queryset is not None and field.pk_field is None and isinstance(queryset.model._meta.pk, _INTEGER_KEYS)


def json_type_problem(field: serializers.Field, value: object) -> str | dict[int, list[str]] | None:
    """Why ``value``, read from JSON, is the wrong JSON type for ``field`` (None when it is not): a whole-number
    field takes a JSON integer (not ``"2"``, ``2.0`` or ``true``), a number field a JSON number, a true/false field
    ``true`` or ``false``, an id of an integer key a JSON integer; a list's items are checked against its child
    (``{index: [message]}``). Other fields, and null (the field's own ``allow_null`` decides), are left to DRF."""
    if value is None:
        return None
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        problems = {i: json_type_problem(field.child, item) for i, item in enumerate(value)}
        found = {i: problem if isinstance(problem, dict) else [problem] for i, problem in problems.items() if problem}
        return found or None
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else NOT_A_BOOLEAN.format(kind=_json_kind(value))
    if isinstance(field, serializers.IntegerField) or (
        isinstance(field, serializers.PrimaryKeyRelatedField) and _takes_integer_keys(field)
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        if isinstance(value, float) and not isinstance(field, serializers.PrimaryKeyRelatedField):
            return NOT_A_WHOLE_NUMBER
        template = NOT_AN_ID if isinstance(field, serializers.PrimaryKeyRelatedField) else NOT_AN_INTEGER
        return template.format(kind=_json_kind(value))
    if isinstance(field, serializers.FloatField):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else NOT_A_NUMBER.format(kind=_json_kind(value))
    return None


class KnownFieldsOnly(serializers.Serializer):
    """Refuses body fields it does not have, and those it only shows (read-only), together with any other field's
    error: a typo such as ``profle`` would otherwise plan without the profile, ``enable: false`` would leave a
    vCenter enabled without a word."""

    def to_internal_value(self, data):
        errors = {**self.json_type_errors(data), **self.unknown_field_errors(data)}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {api_settings.NON_FIELD_ERRORS_KEY: exc.detail}
            raise serializers.ValidationError({**detail, **errors}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def json_type_errors(self, data) -> dict[str, list[str] | dict]:
        """The writable fields given a value of the wrong JSON type (``json_type_problem``); none for a
        form-encoded body, whose values are all text."""
        if not isinstance(data, Mapping) or isinstance(data, QueryDict):
            return {}
        errors: dict[str, list[str] | dict] = {}
        for name, field in self.fields.items():
            if field.read_only or name not in data:
                continue
            problem = json_type_problem(field, data[name])
            if problem:
                errors[name] = problem if isinstance(problem, dict) else [problem]
        return errors

    def unknown_field_errors(self, data) -> dict[str, list[str]]:
        if not isinstance(data, Mapping):
            return {}
        writable = [name for name, field in self.fields.items() if not field.read_only]
        accepted = ", ".join(writable)
        errors: dict[str, list[str]] = {}
        shown: dict | None = None
        for name in sorted(set(map(str, data)) - FORM_EXTRAS):
            field = self.fields.get(name)
            if field is None:
                errors[name] = [f"unknown field; accepted: {accepted}"]
                continue
            if not field.read_only:
                continue
            if self.instance is not None and not isinstance(self.instance, list | tuple):
                # An update that sends back what a GET showed (read, change a field, PUT) is no attempt to write it.
                shown = self.to_representation(self.instance) if shown is None else shown
                if name in shown and shown[name] == data[name]:
                    continue
            errors[name] = [f"read-only field: the server sets it and it cannot be written; accepted: {accepted}"]
        return errors


# ---------------------------------------------------------------------------------------------- query parameters


def accepted_query_params(request, queryset, view) -> set[str]:
    """Every query parameter the list view reads: its filters, ordering, search, paging and ``format``."""
    names = {api_settings.URL_FORMAT_OVERRIDE} - {None}
    for backend_class in getattr(view, "filter_backends", ()):
        backend = backend_class()
        if isinstance(backend, DjangoFilterBackend):
            filterset_class = backend.get_filterset_class(view, queryset)
            if filterset_class is not None:
                names |= set(filterset_class.base_filters)
        elif isinstance(backend, OrderingFilter):
            names.add(backend.ordering_param)
        elif isinstance(backend, SearchFilter):
            names.add(backend.search_param)
    paginator = getattr(view, "paginator", None)
    for attr in ("limit_query_param", "offset_query_param", "page_query_param", "page_size_query_param"):
        name = getattr(paginator, attr, None)
        if name:
            names.add(name)
    return names


def _choice_values(choices) -> list[str]:
    if callable(choices):
        choices = choices()
    return [str(value) for value, _ in choices if value not in ("", None)]


def _empty_choice_errors(request, queryset, view) -> dict[str, list[str]]:
    """Filters with fixed choices (and ``ordering``) given an empty value: the choices, rather than no filter."""
    errors: dict[str, list[str]] = {}
    present = {name for name, values in request.query_params.lists() if values and not any(v.strip() for v in values)}
    if not present:
        return errors
    for backend_class in getattr(view, "filter_backends", ()):
        backend = backend_class()
        if isinstance(backend, DjangoFilterBackend):
            filterset_class = backend.get_filterset_class(view, queryset)
            for name, filter_ in (filterset_class.base_filters if filterset_class else {}).items():
                if name not in present or not isinstance(filter_, django_filters.ChoiceFilter):
                    continue
                if isinstance(filter_, django_filters.ModelChoiceFilter):
                    continue  # an id, not a fixed list
                choices = _choice_values(filter_.extra.get("choices", ()))
                errors[name] = [f"empty value: choose one of {', '.join(choices)} (or leave the parameter out)"]
        elif isinstance(backend, OrderingFilter) and backend.ordering_param in present:
            fields = [f if isinstance(f, str) else f[0] for f in getattr(view, "ordering_fields", None) or ()]
            errors[backend.ordering_param] = [
                f"empty value: order by {', '.join(fields)} (prefix - for descending), or leave the parameter out"
            ]
    return errors


def multi_valued_query_params(request, queryset, view) -> set[str]:
    """The list's filters that take a parameter several times (``?x=1&x=2``): a multiple-choice filter."""
    names: set[str] = set()
    for backend_class in getattr(view, "filter_backends", ()):
        backend = backend_class()
        if not isinstance(backend, DjangoFilterBackend):
            continue
        filterset_class = backend.get_filterset_class(view, queryset)
        for name, filter_ in (filterset_class.base_filters if filterset_class else {}).items():
            widget = filter_.extra.get("widget") or filter_.field_class.widget
            if isinstance(filter_, django_filters.MultipleChoiceFilter) or getattr(
                widget, "allow_multiple_selected", False
            ):
                names.add(name)
    return names


def _repeated_errors(request, queryset, view, accepted: set[str]) -> dict[str, list[str]]:
    """Single-valued parameters given more than once: Django reads the last one, so ``?state=free&state=used``
    answered the used GPUs without a word."""
    repeated = {
        name: len(values) for name, values in request.query_params.lists() if len(values) > 1 and name in accepted
    }
    if not repeated:
        return {}
    multi = multi_valued_query_params(request, queryset, view)
    return {
        name: [f"given {count} times: this parameter takes one value (send it once)"]
        for name, count in sorted(repeated.items())
        if name not in multi
    }


class KnownQueryParams(BaseFilterBackend):
    """A list's unknown query parameters, empty values of its fixed-choice filters and single-valued parameters
    given more than once are a 400 naming them.

    A mistyped filter used to be ignored: ``/api/gpus/?state=free`` answered every GPU. Only lists are checked
    (``action == "list"``); put this backend first in ``filter_backends``."""

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "action", "list") != "list":
            return queryset
        accepted = accepted_query_params(request, queryset, view)
        unknown = sorted(set(request.query_params) - accepted)
        listed = ", ".join(sorted(accepted))
        errors = {name: [f"unknown query parameter; this list takes: {listed}"] for name in unknown}
        errors.update(_empty_choice_errors(request, queryset, view))
        errors.update(_repeated_errors(request, queryset, view, accepted))
        if errors:
            raise ValidationError(errors)
        return queryset


# ---------------------------------------------------------------------------------------------- ?format=


def renderer_formats(renderers: Iterable) -> list[str]:
    formats: list[str] = []
    for renderer in renderers:
        if renderer.format and renderer.format not in formats:
            formats.append(renderer.format)
    return formats


class CheckedFormat:
    """An APIView mixin: ``?format=`` must name one of the view's renderers (DRF answers a bare 404 otherwise, and
    takes an empty value as no format at all)."""

    def perform_content_negotiation(self, request, force: bool = False):
        param = api_settings.URL_FORMAT_OVERRIDE
        if not force and param and param in request.query_params:
            value = request.query_params[param]
            formats = renderer_formats(self.get_renderers())
            if value not in formats:
                shown = repr(value) if value else "an empty value"
                raise ValidationError({param: [f"cannot answer in {shown}: choose one of {', '.join(formats)}"]})
        return super().perform_content_negotiation(request, force)

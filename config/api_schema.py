"""The OpenAPI schema class: every operation documents the errors it can answer, as JSON.

drf-spectacular documents what a view declares; the errors every /api/ endpoint shares (see
``config.api_errors``) are added here so no view has to repeat them:

- 401 for every operation that needs a signed-in user (TokenAuthentication comes first, so DRF answers 401
  with ``WWW-Authenticate: Token``);
- 403 for writes (role missing, or CSRF failed on a session-authenticated write);
- 404 for operations with an id in the path;
- 400 for writes and for lists (a filter value that does not validate);
- 413 and 415 for operations with a request body;
- 429 for every throttled operation (``config.throttles``; also a sign-in lockout on the token endpoint).

A view's own ``@extend_schema(responses=...)`` entry for a code wins (one with a description only gets the
JSON body schema added).
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    """``{"detail": "..."}``: authentication, permission, not found, method, media type errors."""

    detail = serializers.CharField(help_text="What went wrong")


class PayloadTooLargeSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, naming the limit")
    limit_bytes = serializers.IntegerField(help_text="The largest body accepted (DATA_UPLOAD_MAX_MEMORY_SIZE)")


VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "Field name -> list of messages (``non_field_errors`` for the request as a whole, nested objects for "
        "list items and nested fields), or ``detail`` for a body that does not parse."
    ),
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {}},
            {"type": "object", "additionalProperties": {}},
            {"type": "string"},
        ]
    },
    "example": {"gpus_per_vm": ["This field is required."]},
}

WRITE_METHODS = {"POST", "PUT", "PATCH"}
ERROR_DESCRIPTIONS = {
    "400": "Invalid input: field name -> messages",
    "401": "No credentials, or a bad token",
    "403": "Signed in, but without the role this write needs (or the CSRF check failed for a session)",
    "404": "No such object",
    "413": "The request body is over the upload limit",
    "415": "Unsupported request media type",
    "429": "Too many requests (a throttle, or a sign-in lockout): retry after `Retry-After` seconds",
}


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        for code, serializer in self._error_responses().items():
            if code in responses and "content" in responses[code]:
                continue
            body = self._get_response_for_code(serializer, code, ["application/json"], direction=direction)
            # A view that documents the code with a description only keeps its description.
            body["description"] = responses.get(code, {}).get("description") or ERROR_DESCRIPTIONS[code]
            responses[code] = body
        return responses

    def _error_responses(self) -> dict:
        codes: dict[str, object] = {}
        public = any(
            isinstance(p, type) and issubclass(p, AllowAny) for p in getattr(self.view, "permission_classes", ())
        )
        has_body = self.method in WRITE_METHODS
        if has_body or (self.method == "GET" and self._is_list_view()):
            codes["400"] = self._validation_error_schema()
        if not public:
            codes["401"] = ErrorSerializer
            if self.method not in {"GET", "HEAD", "OPTIONS"}:
                codes["403"] = ErrorSerializer
        if "{" in self.path:
            codes["404"] = ErrorSerializer
        if has_body:
            codes["413"] = PayloadTooLargeSerializer
            codes["415"] = ErrorSerializer
        if self.view.get_throttles():
            codes["429"] = ErrorSerializer
        return codes

    def _validation_error_schema(self) -> dict:
        component = ResolvedComponent(
            name="ValidationError", type=ResolvedComponent.SCHEMA, schema=VALIDATION_ERROR_SCHEMA,
            object="ValidationError",
        )  # fmt: skip
        self.registry.register_on_missing(component)
        return component.ref

"""Errors under /api/ are JSON, whatever raised them: DRF, Django's URL resolver, an oversized body, a bug.

- ``exception_handler`` (DRF ``EXCEPTION_HANDLER``): DRF's handler, plus an oversized body as 413 and any
  other exception as a 500 ``{"detail": ...}`` without a traceback (logged like Django logs a 500).
- ``ApiErrorsMiddleware``: refuses a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` before any view reads it (DRF
  streams JSON bodies past Django's own check), answers exceptions raised outside DRF views as JSON, and turns
  Django's HTML error pages (unknown URL 404, ...) for /api/ paths into JSON (DRF's own responses are left
  to DRF's renderers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

API_PREFIX = "/api/"
request_logger = logging.getLogger("django.request")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self) -> None:
        super().__init__(too_large_message())


def upload_limit() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def too_large_message() -> str:
    limit = upload_limit()
    return f"request body too large: the limit is {limit} bytes ({limit // 1024} KiB, DATA_UPLOAD_MAX_MEMORY_SIZE)"


def too_large_body() -> dict:
    return {"detail": too_large_message(), "limit_bytes": upload_limit()}


def _log_500(request: HttpRequest | None, exc: BaseException) -> None:
    path = getattr(request, "path", "?")
    request_logger.error(
        "Internal Server Error: %s", path, exc_info=exc, extra={"status_code": 500, "request": request}
    )


INTERNAL_ERROR = {"detail": "internal server error: the administrator can find the details in the server log"}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, with 413 for an oversized body and a JSON 500 (no traceback) for everything else."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    response = drf_exception_handler(exc, context)
    if response is not None:
        if isinstance(exc, PayloadTooLarge):
            response.data = too_large_body()
        if response.status_code in (404, 406):
            _answer_in_json(context.get("request"))  # also for the browsable API's `.api` suffix
        return response
    if isinstance(exc, SuspiciousOperation):
        return Response({"detail": "bad request"}, status=status.HTTP_400_BAD_REQUEST)
    request = context.get("request")
    _log_500(getattr(request, "_request", request), exc)
    return Response(INTERNAL_ERROR, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _answer_in_json(request) -> None:
    if request is not None and hasattr(request, "accepted_renderer"):
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class ApiErrorsMiddleware:
    """JSON errors for every /api/ path; a body over the upload limit is a 413 before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        if _content_length(request) > upload_limit():
            return JsonResponse(too_large_body(), status=413)
        response = self.get_response(request)
        if response.status_code >= 400 and not isinstance(response, Response) and not _is_json(response):
            response = self._as_json(response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(too_large_body(), status=413)
        if isinstance(exception, Http404):
            return JsonResponse({"detail": "not found"}, status=404)
        if isinstance(exception, PermissionDenied):
            return JsonResponse({"detail": str(exception) or "permission denied"}, status=403)
        if isinstance(exception, SuspiciousOperation):
            return JsonResponse({"detail": "bad request"}, status=400)
        _log_500(request, exception)
        return JsonResponse(INTERNAL_ERROR, status=500)

    @staticmethod
    def _as_json(response: HttpResponse) -> HttpResponse:
        code = response.status_code
        try:
            phrase = HTTPStatus(code).phrase.lower()
        except ValueError:
            phrase = "error"
        detail = {404: "not found", 500: INTERNAL_ERROR["detail"]}.get(code, phrase)
        body = too_large_body() if code == 413 else {"detail": detail}
        json_response = JsonResponse(body, status=code)
        for header in ("Allow", "WWW-Authenticate", "Retry-After"):
            if header in response:
                json_response[header] = response[header]
        return json_response


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip().endswith("json")

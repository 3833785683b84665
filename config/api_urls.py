"""Everything under /api/: ONE router for the inventory and placement viewsets, the token endpoint, the schema.

The API root (``GET /api/``) lists every endpoint: the router's viewsets (the inventory's, and placement's
``plans`` and ``reservations`` under the prefixes of ``placement.api.urls.router``) plus ``token``, ``schema``
and ``docs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_out
from django.http import HttpRequest
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from knox.auth import TokenAuthentication
from knox.views import LoginView as KnoxLoginView
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.routers import APIRootView, DefaultRouter

from config.throttles import AnonThrottle, TokenThrottle
from inventory.api.permissions import PlannerWrites, ReservationOwnerOrAdmin
from inventory.api.urls import register as register_inventory
from placement.api import views as placement_views
from placement.api import whatif as placement_whatif
from placement.api.evacuation import HostEvacuationView


class AuthTokenSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, write_only=True)

    def validate(self, attrs: dict) -> dict:
        # The request goes along: django-axes counts the failure against this username and address.
        user = authenticate(request=self.context["request"], username=attrs["username"], password=attrs["password"])
        if user is None:  # a wrong password, an unknown or inactive user: one answer
            raise serializers.ValidationError("Unable to log in with provided credentials.", code="authorization")
        attrs["user"] = user
        return attrs


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`; it is shown only this once")
    expiry = serializers.DateTimeField(help_text="When the token stops working")


@contextmanager
def _without_session(request: HttpRequest) -> Iterator[None]:
    """Hide the request's session while the sign-in and sign-out signals run. django-axes's access log asks for
    the session's key and creates a session to have one, so every token request stored a ``django_session`` row
    and answered a ``sessionid`` cookie that a token client never uses; without a session axes logs the event
    with an empty session hash (its sign-out then closes every open token sign-in of the user in that log)."""
    session = request.__dict__.pop("session", None)
    try:
        yield
    finally:
        if session is not None:
            request.session = session


class TokenView(KnoxLoginView):
    """Trade a username and password for a new API token (POST), or revoke the token sent (DELETE).

    Tokens are stored hashed: the answer is the only time a token is shown. A wrong username and a wrong
    password get the same answer; repeated failures lock the username out (429), like the login page.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    throttle_classes = [AnonThrottle, TokenThrottle]

    def get_authenticators(self):
        # DELETE revokes the token it is sent with, so it is the one method that authenticates (by token only).
        if getattr(self.request, "method", None) == "DELETE":
            return [TokenAuthentication()]
        return []

    def get_permissions(self):
        if getattr(self.request, "method", None) == "DELETE":
            return [IsAuthenticated()]
        return [AllowAny()]

    def get_throttles(self):
        if getattr(self.request, "method", None) == "DELETE":
            return []
        return super().get_throttles()

    @extend_schema(
        summary="Get an API token",
        request=AuthTokenSerializer,
        responses={200: TokenSerializer},
        auth=[],
        tags=["token"],
    )
    def post(self, request, format=None):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request._request})
        serializer.is_valid(raise_exception=True)
        request.user = serializer.validated_data["user"]
        with _without_session(request._request):  # knox sends user_logged_in
            return super().post(request, format=format)

    @extend_schema(
        summary="Revoke the API token this request is sent with",
        request=None,
        responses={
            204: OpenApiResponse(description="The token no longer works"),
            401: OpenApiResponse(description="No token, or one that is expired, revoked or unknown"),
        },
        tags=["token"],
    )
    def delete(self, request, format=None):
        request.auth.delete()
        with _without_session(request._request):
            user_logged_out.send(sender=request.user.__class__, request=request, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiRootView(APIRootView):
    """The GPU Placement Advisor REST API. Authenticate with a token (`POST /api/token/`) or a session."""


class ApiRouter(DefaultRouter):
    APIRootView = ApiRootView
    # Endpoints that are not viewsets, listed in the root beside the router's own.
    extra_root_entries = {"token": "api-token", "schema": "api-schema", "docs": "api-docs"}

    def get_api_root_view(self, api_urls=None):
        list_name = self.routes[0].name
        root = {prefix: list_name.format(basename=basename) for prefix, _, basename in self.registry}
        root.update(self.extra_root_entries)
        return self.APIRootView.as_view(api_root_dict=dict(sorted(root.items())))


# Placement's viewsets; placement's docstrings stay the operations' descriptions. A plan stores nothing, so any
# signed-in user requests one (as on the plan page); reserving, releasing and what-if runs need the planner role.
class PlanViewSet(placement_views.PlanViewSet):
    __doc__ = placement_views.PlanViewSet.__doc__
    permission_classes = [IsAuthenticated]


class ReservationViewSet(placement_views.ReservationViewSet):
    __doc__ = placement_views.ReservationViewSet.__doc__
    permission_classes = [PlannerWrites, ReservationOwnerOrAdmin]  # a planner releases only their own


class WhatIfViewSet(placement_whatif.WhatIfViewSet):
    __doc__ = placement_whatif.WhatIfViewSet.__doc__
    permission_classes = [PlannerWrites]


class JsonErrorsMixin:
    """Errors are JSON, also from views whose successful answers are not (YAML schema, HTML docs)."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return response


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    """The OpenAPI document (YAML, or JSON with ``?format=json``)."""


class DocsView(JsonErrorsMixin, SpectacularSwaggerSplitView):
    """Swagger UI over the schema; its setup script is served from ``?script`` rather than inline (the pages' CSP
    runs no inline script)."""


router = ApiRouter()
register_inventory(router)
router.register("plans", PlanViewSet, basename="plan")  # the prefixes and basenames of placement.api.urls.router
router.register("reservations", ReservationViewSet, basename="reservation")
router.register("whatif", WhatIfViewSet, basename="whatif")

urlpatterns = [
    path("token/", TokenView.as_view(), name="api-token"),
    path("plans/", PlanViewSet.as_view({"post": "create"}), name="api-plan"),  # the historical name
    path("hosts/<int:pk>/evacuation/", HostEvacuationView.as_view(), name="api-host-evacuation"),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    *router.urls,
]

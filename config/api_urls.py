"""Everything under /api/: ONE router for the inventory and placement viewsets, the token endpoint, the schema.

The API root (``GET /api/``) lists every endpoint: the router's viewsets (the inventory's, and placement's
``plans`` and ``reservations`` under the prefixes of ``placement.api.urls.router``) plus ``token``, ``schema``
and ``docs``.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import APIRootView, DefaultRouter

from inventory.api.permissions import PlannerWrites
from inventory.api.urls import register as register_inventory
from placement.api import views as placement_views
from placement.api import whatif as placement_whatif


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`")


class TokenView(ObtainAuthToken):
    """Trade a username and password for the user's API token (the same token every time until revoked).

    A wrong username and a wrong password get the same answer.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        summary="Get an API token",
        request=AuthTokenSerializer,
        responses={200: TokenSerializer},
        auth=[],
        tags=["token"],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


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


# Placement's viewsets, with the planner role for writes (plans, reserve, release); placement's docstrings
# stay the operations' descriptions.
class PlanViewSet(placement_views.PlanViewSet):
    __doc__ = placement_views.PlanViewSet.__doc__
    permission_classes = [PlannerWrites]


class ReservationViewSet(placement_views.ReservationViewSet):
    __doc__ = placement_views.ReservationViewSet.__doc__
    permission_classes = [PlannerWrites]


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


class DocsView(JsonErrorsMixin, SpectacularSwaggerView):
    """Swagger UI over the schema."""


router = ApiRouter()
register_inventory(router)
router.register("plans", PlanViewSet, basename="plan")  # the prefixes and basenames of placement.api.urls.router
router.register("reservations", ReservationViewSet, basename="reservation")
router.register("whatif", WhatIfViewSet, basename="whatif")

urlpatterns = [
    path("token/", TokenView.as_view(), name="api-token"),
    path("plans/", PlanViewSet.as_view({"post": "create"}), name="api-plan"),  # the historical name
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    *router.urls,
]

"""Placement API routes. ``router`` holds plans and reservations so a project-wide router can merge them
(``router.registry``); ``urlpatterns`` serves them on its own, with the historical ``api-plan`` name."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from placement.api import views

router = DefaultRouter()
router.register("plans", views.PlanViewSet, basename="plan")
router.register("reservations", views.ReservationViewSet)

plan_view = views.PlanViewSet.as_view({"post": "create"})

urlpatterns = [path("plans/", plan_view, name="api-plan"), *router.urls]

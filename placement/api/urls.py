from django.urls import path
from rest_framework.routers import DefaultRouter

from placement.api import views

router = DefaultRouter()
router.register("reservations", views.ReservationViewSet)

urlpatterns = [path("plans/", views.PlanView.as_view(), name="api-plan"), *router.urls]

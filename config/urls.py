from django.contrib import admin, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from config import token_admin  # noqa: F401  (the token admin without secrets)
from inventory import views as inventory_views


class SignOutView(auth_views.LogoutView):
    """Signs out and says so on the login page it lands on."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")
        return response


urlpatterns = [
    path("", inventory_views.overview, name="home"),
    path("accounts/login/", login_not_required(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", SignOutView.as_view(), name="logout"),
    path("healthz", inventory_views.healthz, name="healthz"),
    path("", include("inventory.urls")),  # pages: /clusters/, /syncs/, /vcenters/, /inventory/hosts/
    path("", include("placement.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("config.api_urls")),
]

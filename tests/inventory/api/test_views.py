"""The REST API: authentication required, vCenter passwords never part of any representation."""

import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests import factories

pytestmark = pytest.mark.django_db
SECRET = "Never-Show-Me-42"


@pytest.fixture
def user():
    return get_user_model().objects.create_user("ops", password="x-Long-Passw0rd")


@pytest.mark.reliability("api input", "no credentials")
@pytest.mark.parametrize("path", ["/api/vcenters/", "/api/hosts/", "/api/gpus/", "/api/schema/"])
def test_anonymous_requests_are_refused(path):
    response = APIClient().get(path)
    assert response.status_code == 401


@pytest.mark.reliability("api input", "no credentials")
def test_pages_redirect_anonymous_users_to_login(client, settings):
    settings.REDIS_URL = ""  # the embedded mode: health passes without a worker (tests/inventory/test_health.py)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/healthz").status_code == 200


def test_vcenter_password_is_never_returned(user):
    vc = factories.VCenterFactory(password=SECRET)
    api = APIClient()
    api.force_authenticate(user)
    for path in ("/api/vcenters/", f"/api/vcenters/{vc.pk}/"):
        response = api.get(path)
        assert response.status_code == 200
        body = response.content.decode()
        assert SECRET not in body and "password_encrypted" not in body and vc.password_encrypted not in body
    assert response.json()["has_password"] is True


def test_token_authentication(user):
    _, token = AuthToken.objects.create(user=user)
    factories.GpuFactory()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.get("/api/gpus/")
    assert response.status_code == 200 and response.json()["count"] == 1


def test_schema_and_docs_are_served_to_authenticated_users(user):
    api = APIClient()
    api.force_authenticate(user)
    assert api.get("/api/schema/").status_code == 200
    assert api.get("/api/docs/").status_code == 200

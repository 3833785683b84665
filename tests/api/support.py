"""Fixtures shared by the REST API tests (tests/api and tests/inventory/api import them in their conftest)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.vcsim import LABS

SECRET = "Never-Show-Me-42"


def load_demo(name: str = "demo-lab"):
    from inventory import services

    vcenter, _ = services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name=name)
    return vcenter


@pytest.fixture
def demo(db):
    """The demo lab imported as vCenter ``demo-lab`` (5 hosts, 8 VMs)."""
    return load_demo()


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


@pytest.fixture
def api_as(db) -> Callable[[str | None], APIClient]:
    """``api_as("admin")``: a client authenticated by token as a user holding that role (None: no group)."""

    def make(role: str | None = None) -> APIClient:
        return token_client(UserFactory(role=role))

    return make


@pytest.fixture
def api(api_as) -> APIClient:
    """A viewer (every signed-in user reads)."""
    return api_as("viewer")

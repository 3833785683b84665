import pytest
import yaml
from django.core.management import call_command


@pytest.mark.django_db
def test_openapi_schema_is_valid_and_warning_free(tmp_path):
    path = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    schema = yaml.safe_load(path.read_text())
    paths = set(schema["paths"])
    assert {"/api/plans/", "/api/reservations/", "/api/hosts/{id}/smi-capture/", "/api/vcenters/"} <= paths
    vcenter = schema["components"]["schemas"]["VCenter"]["properties"]
    assert not any("password" in name and name != "has_password" for name in vcenter)

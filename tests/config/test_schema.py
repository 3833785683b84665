import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker, tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "schema.yml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _refs(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if "$ref" in node else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _closure(schema: dict, names: set[str]) -> set[str]:
    components = schema["components"]["schemas"]
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_refs(components[name]))
    return seen


def test_openapi_schema_is_valid_and_warning_free(schema):
    paths = set(schema["paths"])
    assert {"/api/plans/", "/api/reservations/", "/api/hosts/{id}/smi-capture/", "/api/vcenters/"} <= paths
    vcenter = schema["components"]["schemas"]["VCenter"]["properties"]
    assert not any("password" in name and name != "has_password" for name in vcenter)


def test_every_endpoint_is_documented(schema):
    expected = {
        "/api/token/", "/api/plans/", "/api/reservations/", "/api/reservations/{id}/",
        "/api/reservations/{id}/settings/", "/api/reservations/{id}/powercli/",
        "/api/reservations/{id}/renew/",
        "/api/vcenters/", "/api/vcenters/{id}/", "/api/vcenters/{id}/test/", "/api/vcenters/{id}/accept-new-identity/",
        "/api/clusters/", "/api/clusters/{id}/", "/api/hosts/", "/api/hosts/{id}/",
        "/api/hosts/{id}/topology/", "/api/hosts/{id}/smi-capture/", "/api/hosts/{id}/evacuation/",
        "/api/gpus/", "/api/gpus/{id}/",
        "/api/vms/", "/api/vms/{id}/", "/api/vgpu-profiles/", "/api/vgpu-profiles/{id}/",
        "/api/domains/", "/api/domains/{id}/", "/api/sync-runs/", "/api/sync-runs/{id}/",
        "/api/sync-runs/{id}/cancel/",
        "/api/whatif/", "/api/whatif/{id}/",
    }  # fmt: skip
    assert set(schema["paths"]) == expected
    assert set(schema["paths"]["/api/vcenters/{id}/"]) == {"get", "put", "patch", "delete"}
    assert set(schema["paths"]["/api/sync-runs/"]) == {"get", "post"}


def test_reservations_document_their_problems_and_the_needs_attention_filter(schema):
    reservation = schema["components"]["schemas"]["Reservation"]
    problems = reservation["properties"]["problems"]
    assert problems["type"] == "array" and problems["items"]["type"] == "string" and problems["readOnly"]
    assert "[] when fine" in problems["description"] and "problems" in reservation["required"]
    assert {"close_reason", "host", "host_id", "vcenter"} <= set(reservation["properties"])
    params = {p["name"] for p in schema["paths"]["/api/reservations/"]["get"]["parameters"]}
    assert "needs_attention" in params


def test_operation_ids_are_unique(schema):
    ids = [op["operationId"] for _, _, op in _operations(schema)]
    assert len(ids) == len(set(ids))


def test_no_response_schema_has_a_password_field(schema):
    components = schema["components"]["schemas"]
    response_refs: set[str] = set()
    for _, _, operation in _operations(schema):
        response_refs |= _refs(operation["responses"])
    for name in _closure(schema, response_refs):
        props = components[name].get("properties", {})
        assert not [p for p in props if "password" in p and p != "has_password"], name
    # ...while the request bodies take it, write-only
    assert components["VCenterRequest"]["properties"]["password"]["writeOnly"] is True


def test_token_endpoint_is_documented_without_auth(schema):
    operation = schema["paths"]["/api/token/"]["post"]
    assert _refs(operation["requestBody"]) == {"AuthTokenRequest"}
    assert _refs(operation["responses"]["200"]) == {"Token"}
    assert operation.get("security", []) in ([], [{}]) and "security" not in schema  # no credentials needed
    assert "401" not in operation["responses"] and "400" in operation["responses"]
    token = schema["components"]["schemas"]["Token"]
    assert set(token["properties"]) == {"token", "expiry"} and token["properties"]["expiry"]["format"] == "date-time"
    assert "password" not in token["properties"]


def test_token_revocation_is_documented_with_token_auth(schema):
    operation = schema["paths"]["/api/token/"]["delete"]
    assert "204" in operation["responses"] and "401" in operation["responses"]
    assert {name for entry in operation["security"] for name in entry} == {"knoxApiToken"}
    scheme = schema["components"]["securitySchemes"]["knoxApiToken"]
    assert scheme["type"] == "apiKey" and scheme["in"] == "header" and scheme["name"] == "Authorization"


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        ("/api/hosts/", "get", {"200", "400", "401"}),
        ("/api/hosts/{id}/", "get", {"200", "401", "404"}),
        ("/api/hosts/{id}/topology/", "get", {"200", "401", "404"}),
        ("/api/hosts/{id}/smi-capture/", "post", {"201", "400", "401", "403", "404", "413", "415"}),
        ("/api/vcenters/", "post", {"201", "400", "401", "403", "413", "415"}),
        ("/api/vcenters/{id}/", "patch", {"200", "400", "401", "403", "404", "413", "415"}),
        ("/api/vcenters/{id}/", "delete", {"200", "401", "403", "404"}),
        ("/api/vcenters/{id}/test/", "post", {"200", "401", "403", "404"}),
        ("/api/sync-runs/", "post", {"202", "400", "401", "403", "413", "415"}),
        ("/api/reservations/", "post", {"201", "400", "401", "403", "409", "413", "415"}),
        ("/api/plans/", "post", {"200", "400", "401", "403", "413", "415"}),
    ],
)
def test_error_responses_are_documented(schema, path, method, codes):
    responses = schema["paths"][path][method]["responses"]
    assert codes <= set(responses), set(responses)
    for code in codes - {"200", "201", "202", "204"}:
        content = responses[code].get("content", {})
        assert set(content) == {"application/json"}, (code, content)


def test_every_throttled_operation_documents_429(schema):
    for path, method, operation in _operations(schema):
        throttled = (path, method) != ("/api/token/", "delete")  # revoking is never throttled
        assert ("429" in operation["responses"]) is throttled, (path, method)
        if throttled:
            assert set(operation["responses"]["429"]["content"]) == {"application/json"}


def test_topology_documents_json_and_svg(schema):
    operation = schema["paths"]["/api/hosts/{id}/topology/"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "image/svg+xml"}
    fmt = next(p for p in operation["parameters"] if p["name"] == "format")
    assert fmt["schema"]["enum"] == ["json", "svg"]


def test_lists_document_filters_ordering_and_pagination(schema):
    params = {p["name"] for p in schema["paths"]["/api/hosts/"]["get"]["parameters"]}
    assert {"limit", "offset", "ordering", "q", "vcenter", "cluster", "gpu_model", "mode", "min_free_gpus"} <= params
    for path in ["/api/vcenters/", "/api/clusters/", "/api/gpus/", "/api/vms/", "/api/vgpu-profiles/",
                 "/api/domains/", "/api/sync-runs/"]:  # fmt: skip
        names = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
        assert {"limit", "offset", "ordering"} <= names, path


def test_the_root_and_the_schema_agree(api):
    root = api.get("/api/").json()
    schema_paths = set(yaml.safe_load(api.get("/api/schema/").content)["paths"])
    for name in set(root) - {"schema", "docs"}:
        assert f"/api/{name}/" in schema_paths, name

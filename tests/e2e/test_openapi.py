"""The registry's and the verifier's OpenAPI 3.1 documents: valid, true of the processes'
real answers, and fuzzed with schemathesis (bounded: a fixed seed and number of examples).

By hand, with a random seed and more examples, against a running stack::

    .venv/bin/schemathesis run http://127.0.0.1:8080/openapi.json \\
        -H "Authorization: Bearer $AGENTAUTH_ADMIN_TOKEN" \\
        --checks all --exclude-checks positive_data_acceptance --max-examples 1000
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from openapi_spec_validator import validate

from tests.factories import Agent
from tests.support.stack import Site, site_fixtures

ADMIN_TOKEN = "admin-" + "o" * 40
SHOP = "https://shop.example/api"
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
# Every check but "a request the schema allows is accepted": the documents describe the
# wire's shapes, not every rule the server enforces on their values.
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]

site, _ = site_fixtures("openapi", admin_token=ADMIN_TOKEN)


def _document(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="module")
def shop(site: Site) -> dict[str, Any]:
    """A resource server: the verifier's caller."""
    created = httpx.post(
        f"{site.registry.url}/admin/resource-servers",
        json={"name": "Shop", "resource": SHOP},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


@pytest.mark.parametrize("process", ["registry", "verifier"])
def test_each_process_serves_a_valid_openapi_3_1_document(site: Site, process: str) -> None:
    document = _document(getattr(site, process).url)
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


async def test_the_registry_document_is_true_of_its_answers(site: Site) -> None:
    schema = schemathesis.openapi.from_dict(_document(site.registry.url))
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=site.registry.url, timeout=10) as http:
        human = await http.post("/admin/humans", json={"display_name": "Ada"}, headers=admin)
        token = await http.post(
            "/admin/enrollment-tokens", json={"owner": human.json()["id"]}, headers=admin
        )
        agent = Agent()
        registered = await http.post(
            "/register",
            json={"client_name": "Agent", "jwks": {"keys": [agent.public.to_dict()]}},
            headers={"Authorization": f"Bearer {token.json()['token']}"},
        )
        answers = [
            ("POST", "/admin/humans", human, 201),
            ("POST", "/admin/enrollment-tokens", token, 201),
            ("POST", "/register", registered, 201),
            ("POST", "/register", await http.post("/register", json={}), 401),
            ("GET", "/admin/humans", await http.get("/admin/humans", headers=admin), 200),
            ("GET", "/admin/agents", await http.get("/admin/agents", headers=admin), 200),
            ("GET", "/admin/grants", await http.get("/admin/grants", headers=admin), 200),
            ("GET", "/admin/audit", await http.get("/admin/audit", headers=admin), 200),
            (
                "GET",
                "/admin/audit/verify",
                await http.get("/admin/audit/verify", headers=admin),
                200,
            ),
            ("GET", "/admin/humans", await http.get("/admin/humans"), 401),
            (
                "GET",
                "/admin/resource-servers",
                await http.get("/admin/resource-servers", headers=admin),
                200,
            ),
            (
                "POST",
                "/admin/grants/{grant_id}/revoke",
                await http.post("/admin/grants/grt_none/revoke", headers=admin),
                404,
            ),
            (
                "GET",
                "/.well-known/oauth-authorization-server",
                await http.get("/.well-known/oauth-authorization-server"),
                200,
            ),
            ("GET", "/.well-known/jwks.json", await http.get("/.well-known/jwks.json"), 200),
            ("POST", "/token", await http.post("/token", data={"grant_type": "x"}), 401),
            ("POST", "/token", await http.post("/token", content=b"%zz"), 400),
            ("POST", "/revoke", await http.post("/revoke", data={"token": "t"}), 401),
            (
                "POST",
                "/bc-authorize",
                await http.post("/bc-authorize", data={"login_hint": "x"}),
                401,
            ),
            ("GET", "/authorize", await http.get("/authorize"), 400),
            ("GET", "/healthz", await http.get("/healthz"), 200),
            ("GET", "/readyz", await http.get("/readyz"), 200),
            ("GET", "/metrics", await http.get("/metrics"), 200),
        ]
    for method, path, response, status in answers:
        assert response.status_code == status, (method, path, response.text)
        schema[path][method].validate_response(response)  # raises on any mismatch


async def test_the_verifier_document_is_true_of_its_answers(
    site: Site, shop: dict[str, Any]
) -> None:
    schema = schemathesis.openapi.from_dict(_document(site.verifier.url))
    caller = httpx.BasicAuth(shop["client_id"], shop["client_secret"])
    verify = {"token": "not-a-token", "method": "GET", "url": SHOP + "/items"}
    async with httpx.AsyncClient(base_url=site.verifier.url, timeout=10) as http:
        answers = [
            (
                "POST",
                "/introspect",
                await http.post("/introspect", data={"token": "x"}, auth=caller),
                200,
            ),
            ("POST", "/introspect", await http.post("/introspect", data={"token": "x"}), 401),
            ("POST", "/introspect", await http.post("/introspect", data={}, auth=caller), 400),
            ("POST", "/verify", await http.post("/verify", json=verify, auth=caller), 200),
            ("POST", "/verify", await http.post("/verify", json=verify), 401),
        ]
        for path in ("/.well-known/jwks.json", "/healthz", "/readyz", "/metrics", "/openapi.json"):
            answers.append(("GET", path, await http.get(path), 200))
    for method, path, response, status in answers:
        assert response.status_code == status, (method, path, response.text)
        schema[path][method].validate_response(response)


def _schemathesis(url: str, workdir: Path, *arguments: str) -> None:
    """A bounded run (fixed seed and number of examples) that must find nothing; its
    example database stays in ``workdir``."""
    finished = subprocess.run(  # noqa: S603 - our own command line
        [SCHEMATHESIS, "run", f"{url}/openapi.json", *CHECKS, "--seed", "7", *arguments],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-6000:] + finished.stderr[-2000:]
    assert "passed" in finished.stdout


def test_schemathesis_finds_nothing_at_the_registry(site: Site, tmp_path: Path) -> None:
    _schemathesis(
        site.registry.url,
        tmp_path,
        "-H",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--max-examples",
        "150",
    )


def test_schemathesis_finds_nothing_at_the_verifier(
    site: Site, shop: dict[str, Any], tmp_path: Path
) -> None:
    auth = f"{shop['client_id']}:{shop['client_secret']}"
    _schemathesis(site.verifier.url, tmp_path, "--auth", auth, "--max-examples", "400")

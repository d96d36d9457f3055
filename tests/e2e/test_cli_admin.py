"""The operator commands against a running `agentauth dev`, as a shell user runs them."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.core.keys import new_signing_key
from app.core.tokens import AccessTokenClaims, mint_access_token
from tests.support.processes import free_port, wait_until_listening

AGENTAUTH = str(Path(sys.executable).parent / "agentauth")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    rp, vp = free_port(), free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGENTAUTH_")}
    args = [AGENTAUTH, "dev", "--data-dir", str(tmp_path_factory.mktemp("cli")),
            "--registry-port", str(rp), "--verifier-port", str(vp)]  # fmt: skip
    dev = subprocess.Popen(  # noqa: S603 - our own command
        args, env=clean, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert dev.stdout is not None
    admin = ""
    for line in dev.stdout:
        match = re.search(r"admin token\s+(\S+)", line)
        if match:
            admin = match.group(1)
        if line.startswith("Press Ctrl+C"):
            break
    wait_until_listening(rp)
    try:
        yield {
            **clean,
            "AGENTAUTH_ISSUER": f"http://127.0.0.1:{rp}",
            "AGENTAUTH_ADMIN_TOKEN": admin,
            "VERIFIER": f"http://127.0.0.1:{vp}",
        }
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=20)
        dev.stdout.close()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [AGENTAUTH, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_operator_commands(env: dict[str, str]) -> None:
    invited = run(env, "humans", "invite", "Erin", "--json")
    assert invited.returncode == 0, invited.stderr
    human = json.loads(invited.stdout)
    assert human["invite_url"].endswith(human["invite_token"])
    listed = run(env, "humans", "list")
    assert human["id"] in listed.stdout

    server = json.loads(
        run(
            env, "resource-servers", "create", "Shop", "https://shop.cli.example/api", "--json"
        ).stdout
    )
    assert server["client_secret"]
    assert "https://shop.cli.example/api" in run(env, "resource-servers", "list").stdout

    token = run(env, "enrollment-tokens", "create", "--owner", human["id"])
    assert token.returncode == 0
    assert "usable once" in token.stdout
    assert run(env, "agents", "list").returncode == 0

    rotated = json.loads(run(env, "keys", "rotate", "--prepublish-seconds", "0", "--json").stdout)
    assert rotated["kid"] in run(env, "keys", "list").stdout

    inactive = run(
        env, "token", "verify", "not.a.token", "--verifier", env["VERIFIER"],
        "--client-id", server["client_id"], "--client-secret", server["client_secret"],
    )  # fmt: skip
    assert (inactive.returncode, inactive.stdout.strip()) == (1, "inactive")

    refused = run(env, "humans", "suspend", "usr_nobody")
    assert refused.returncode == 1
    assert "not_found" in refused.stderr
    no_admin = run({**env, "AGENTAUTH_ADMIN_TOKEN": ""}, "agents", "list")
    assert no_admin.returncode == 2
    unreachable = run({**env, "AGENTAUTH_ISSUER": "http://127.0.0.1:9"}, "agents", "list")
    assert unreachable.returncode == 3


def test_a_server_answering_html_gives_a_clear_error(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / ".well-known").mkdir()
    (tmp_path / ".well-known" / "jwks.json").write_text("<html>a proxy error page</html>")
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - a static file server on loopback
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_listening(port)
        answer = run(env, "keys", "list", "--url", f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert answer.returncode == 1
    assert "without a JSON object" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_token_inspect_explains_without_verifying() -> None:
    key = new_signing_key(activates_at=0)
    claims = AccessTokenClaims(
        iss="https://as.example", sub="usr_1", aud="https://shop.example/api",
        client_id="agt_b", act={"sub": "agt_b", "act": {"sub": "agt_a"}}, iat=1, exp=2,
        jkt="A" * 43, grant_id="grt_1", auth_time=1,
        authorization_details=[{"type": "api", "locations": ["https://shop.example/api"],
                                "actions": ["read"]}],
    )  # fmt: skip
    result = CliRunner().invoke(app, ["token", "inspect", mint_access_token(claims, key)])
    assert result.exit_code == 0, result.output
    assert "NOT VERIFIED" in result.output
    assert "agt_b acting for agt_a" in result.output
    assert "ago" in result.output  # expired long ago
    garbage = CliRunner().invoke(app, ["token", "inspect", "garbage"])
    assert garbage.exit_code == 2


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": 10**20, "exp": -(10**15), "cnf": "x"},
        {"act": "x", "authorization_details": "abc", "iat": True},
        {"authorization_details": [1, {"type": 3}], "act": {"act": [1]}, "cnf": {"jkt": [1]}},
    ],
    ids=["times-out-of-range", "wrong-types", "wrong-nested-types"],
)
def test_token_inspect_explains_hostile_claims_without_a_traceback(claims: dict[str, Any]) -> None:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    token = f"{part({'alg': 'ES256'})}.{part(claims)}.c2ln"
    result = CliRunner().invoke(app, ["token", "inspect", token])
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "NOT VERIFIED" in result.output


def test_outputs_label_what_they_print(env: dict[str, str], tmp_path: Path) -> None:
    invited = run(env, "humans", "invite", "Frank")
    assert invited.returncode == 0, invited.stderr
    assert re.search(r"^human id: usr_\S+$", invited.stdout, re.M), invited.stdout
    created = run(env, "resource-servers", "create", "Labels", "https://labels.cli.example/api")
    assert created.returncode == 0, created.stderr
    assert re.search(r"^client id: rs_\S+$", created.stdout, re.M), created.stdout
    assert "client secret (shown once): " in created.stdout


def test_a_private_key_jwt_resource_server_can_be_created_with_its_jwks(
    env: dict[str, str], tmp_path: Path
) -> None:
    key = new_signing_key(alg="ES256", activates_at=0)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.public.to_dict()]}))
    created = run(
        env, "resource-servers", "create", "Keyed", "https://keyed.cli.example/api",
        "--auth-method", "private_key_jwt", "--jwks", str(tmp_path / "jwks.json"), "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "client_secret" not in json.loads(created.stdout)


def test_an_mcp_resource_server_accepts_bearer_tokens_and_has_scopes(
    env: dict[str, str], tmp_path: Path
) -> None:
    scopes = {"read": [{"type": "api", "actions": ["read"]}]}
    (tmp_path / "scopes.json").write_text(json.dumps(scopes))
    created = run(
        env, "resource-servers", "create", "Tools", "http://localhost:9100/mcp",
        "--accept-bearer", "--scopes", str(tmp_path / "scopes.json"), "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    assert (data["dpop_required"], data["scopes"]) == (False, scopes)
    bad = run(env, "resource-servers", "create", "Bad", "http://localhost:9101/mcp",
              "--scopes", str(tmp_path / "missing.json"))  # fmt: skip
    assert bad.returncode == 2
    assert "--scopes" in bad.stderr


def test_usage_errors_are_caught_before_any_request(env: dict[str, str]) -> None:
    unauthenticated = run(env, "token", "verify", "a.b.c", "--verifier", env["VERIFIER"])
    assert unauthenticated.returncode == 2
    assert "--client-id and --client-secret" in unauthenticated.stderr
    bad_email = run(env, "humans", "invite", "Gina", "--email", "notanemail")
    assert bad_email.returncode == 1
    assert "email must be an address" in bad_email.stderr


def test_help_shows_flags_without_a_type_and_whole_sentences() -> None:
    for args in (["humans", "list", "--help"], ["token", "inspect", "--help"], ["--help"]):
        shown = CliRunner().invoke(app, args).output
        assert "<bool>" not in shown, shown
        described = [line for line in shown.splitlines() if not line.startswith("Usage:")]
        assert not any(line.rstrip().endswith("...") for line in described), shown
    inspect_help = CliRunner().invoke(app, ["token", "inspect", "--help"]).output
    assert "server" not in inspect_help

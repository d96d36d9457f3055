"""Micro-benchmark of the protocol core's hot operations.

Prints µs/op for access-token verification, DPoP proof verification, RFC 7638 thumbprints and
capability coverage, next to a raw ``cryptography`` ES256 signature verification measured in
the same run, and the ratios the design targets (access token ≤ 1.5x, DPoP ≤ 1.7x the raw
verify). Each figure is the median of several repeats; run it on a quiet machine, ideally
pinned to one CPU: ``taskset -c 1 python benchmarks/core.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cryptography
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from app.core.capabilities import covers, narrow, parse_authorization_details
from app.core.dpop import verify_proof
from app.core.jwk import thumbprint
from app.core.jws import sign_compact, token_hash
from app.core.keys import new_signing_key, public_jwk_for
from app.core.tokens import AccessTokenClaims, mint_access_token, verify_access_token

ISSUER = "https://as.example.com"
SHOP = "https://shop.example.com/api"
NOW = 1_790_000_000
BASELINE = "raw ES256 verify (cryptography)"


def measure_rounds(
    cases: dict[str, Callable[[], object]], *, rounds: int, min_time: float
) -> list[dict[str, float]]:
    """µs per call of every case, measured case after case in each round.

    Interleaving the cases means a noisy neighbour slows a round's baseline and its
    candidates alike, so per-round ratios are steadier than ratios of separate medians.
    """
    numbers = {}
    for name, fn in cases.items():
        number, elapsed = timeit.Timer(fn).autorange()
        numbers[name] = max(1, int(number * min_time / max(elapsed, 1e-9)))
    results = []
    for _ in range(rounds):
        results.append(
            {
                name: timeit.Timer(fn).timeit(numbers[name]) / numbers[name] * 1e6
                for name, fn in cases.items()
            }
        )
    return results


def build_cases() -> dict[str, Callable[[], object]]:
    server_key = new_signing_key(activates_at=0)
    agent_key = ec.generate_private_key(ec.SECP256R1())
    agent_public = public_jwk_for(agent_key, alg="ES256")
    jwk = {k: v for k, v in agent_public.to_dict().items() if k in ("kty", "crv", "x", "y")}
    details = [{"type": "api", "locations": [SHOP], "actions": ["read", "pay"]}]
    claims = AccessTokenClaims(
        iss=ISSUER,
        sub="usr_alice",
        aud=SHOP,
        client_id="agt_a",
        act={"sub": "agt_a"},
        iat=NOW,
        exp=NOW + 300,
        jkt=agent_public.jkt,
        grant_id="grt_1",
        auth_time=NOW,
        authorization_details=details,
    )
    token = mint_access_token(claims, server_key)
    keys = {server_key.kid: server_key.public}
    proof = sign_compact(
        {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk},
        {"jti": "j1", "htm": "POST", "htu": f"{SHOP}/orders", "iat": NOW, "ath": token_hash(token)},
        agent_key,
    )
    # The raw baseline: one ES256 verification with an already-imported key and DER signature.
    server_private = server_key.private_key
    assert isinstance(server_private, ec.EllipticCurvePrivateKey)
    raw_public = server_private.public_key()
    message = token.rsplit(".", 1)[0].encode()
    der = server_private.sign(message, ec.ECDSA(hashes.SHA256()))

    registry = {SHOP: {}}
    granted = parse_authorization_details(
        [
            {
                "type": "api",
                "locations": [SHOP],
                "actions": ["read", "pay"],
                "identifier": "o*",
                "limits": {
                    "max_amount": {"value": "50.00", "currency": "EUR"},
                    "rate": {"max_requests": 60, "period": "minute"},
                },
            }
        ],
        registry,
    )[0]
    requested = parse_authorization_details(
        [
            {
                "type": "api",
                "locations": [SHOP],
                "actions": ["pay"],
                "identifier": "orders/1",
                "limits": {"max_amount": {"value": "10.00", "currency": "EUR"}},
            }
        ],
        registry,
    )[0]
    narrowed = narrow(granted, requested)

    return {
        BASELINE: lambda: raw_public.verify(der, message, ec.ECDSA(hashes.SHA256())),
        "access token verify": lambda: verify_access_token(
            token, issuer=ISSUER, keys=keys, now=NOW, audience=SHOP
        ),
        "DPoP proof verify (ath + binding)": lambda: verify_proof(
            [proof],
            method="POST",
            url=f"{SHOP}/orders",
            now=NOW,
            access_token=token,
            bound_jkt=agent_public.jkt,
        ),
        "RFC 7638 thumbprint": lambda: thumbprint(jwk),
        "capability coverage": lambda: covers(granted, narrowed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per case per round")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    cases = build_cases()
    started = time.perf_counter()
    rounds = measure_rounds(cases, rounds=args.rounds, min_time=args.min_time)
    results = {name: statistics.median(r[name] for r in rounds) for name in cases}
    pairs = {
        "access token verify / raw": "access token verify",
        "DPoP verify / raw": "DPoP proof verify (ath + binding)",
    }
    ratios = {
        label: statistics.median(r[name] / r[BASELINE] for r in rounds)
        for label, name in pairs.items()
    }
    if args.json:
        print(json.dumps({"us_per_op": results, "ratios": ratios}, indent=2))
        return
    print(
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{platform.machine()}; medians of {args.rounds} interleaved rounds"
    )
    for name, value in results.items():
        print(f"  {name:36s} {value:9.2f} µs/op")
    targets = {"access token verify / raw": 1.5, "DPoP verify / raw": 1.7}
    for name, value in ratios.items():
        verdict = "ok" if value <= targets[name] else "ABOVE TARGET"
        print(f"  {name:36s} {value:9.2f}x  (target ≤ {targets[name]}x: {verdict})")
    print(f"  ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()

"""The fault suite (benchmarks/chaos.py), reduced: every fault once, a fifth of the documented
rates, shorter phases and a 250 ms propagation bound, against two registries, two verifiers
and the worker as processes on a private PostgreSQL cluster and a private Redis. The whole
run is ``.venv/bin/python benchmarks/chaos.py`` (docs/reliability.md, "Faults under load").

The checkers themselves are tested first, on records made up to break each rule."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import chaos
from chaos import Config, Grant, Record

# A 250 ms propagation (and staleness) bound: a CI machine is shared, and a verifier whose
# heartbeats a busy machine delays past a 100 ms bound answers 503 long after the fault.
REDUCED = Config(
    steady=2.0, outage=3.0, observe=4.0, spend_grants=3, propagation_bound=0.25
).scaled(0.2)


def _grant(grant_id: str, revoked_at: float | None = None) -> Grant:
    return Grant(grant_id, [], None, victim=True, revoked_at=revoked_at)


def test_a_yes_after_the_propagation_bound_is_a_violation() -> None:
    grants = [_grant("g", revoked_at=10.0)]
    records = [
        Record("introspect", "g", 10.05, 10.06, "yes"),  # within the bound
        Record("verify", "g", 10.2, 10.21, "no", reason="revoked"),
        Record("verify", "g", 10.3, 10.31, "503"),
    ]
    assert chaos.revocation_violations(records, grants, 0.1) == []
    late = [*records, Record("exchange", "g", 10.2, 10.25, "yes")]
    assert len(chaos.revocation_violations(late, grants, 0.1)) == 1


def test_the_ledger_must_hold_every_allowed_spend_and_nothing_unexplained() -> None:
    records = [
        Record("verify", "g", 1.0, 1.1, "yes", amount=10),
        Record("verify", "g", 1.0, 1.1, "yes", amount=20),
        Record("verify", "g", 1.0, 1.1, "503", amount=5),
        Record("verify", "g", 1.0, 1.1, "no", reason="budget_exhausted", amount=7),
    ]
    assert chaos.compare_ledger(records, {"g": (2, 30)}, ["g"]) == []
    assert chaos.compare_ledger(records, {"g": (3, 35)}, ["g"]) == []  # the 503 was counted
    assert len(chaos.compare_ledger(records, {"g": (1, 10)}, ["g"])) == 1  # an allowed one lost
    assert len(chaos.compare_ledger(records, {"g": (3, 37)}, ["g"])) == 1  # a refused one kept
    over = [Record("verify", "g", 1.0, 1.1, "yes", amount=chaos.BUDGET_MINOR + 1)]
    assert len(chaos.compare_ledger(over, {"g": (1, chaos.BUDGET_MINOR + 1)}, ["g"])) == 1


def test_a_server_error_or_a_failure_after_the_recovery_bound_is_a_violation() -> None:
    config = Config(recovery_bound=2.0)
    fine = [Record("verify", "g", 5.0, 5.1, "503"), Record("verify", "g", 6.0, 6.1, "yes")]
    report = chaos.summarize("f", "", fine, 4.0, 4.5, config, [], {})  # the 503: 0.5 s after
    assert report.ok
    assert report.recovery_seconds == 0.5
    late = [*fine, Record("introspect", "g", 8.0, 8.1, "failed")]
    assert not chaos.summarize("f", "", late, 4.0, 4.5, config, [], {}).ok
    broken = [*fine, Record("refresh", "g", 5.0, 5.1, "5xx:500")]
    assert not chaos.summarize("f", "", broken, 4.0, 4.5, config, [], {}).ok


def test_every_invariant_holds_under_every_fault(tmp_path: Path) -> None:
    report = chaos.run(REDUCED, tmp_path, log=lambda _: None)
    phases = {phase["fault"]: phase for phase in report["phases"]}
    assert list(phases) == list(chaos.FAULTS)
    problems = {fault: p["violations"] for fault, p in phases.items() if p["violations"]}
    assert not problems, problems
    assert report["audit"]["violations"] == []
    for fault, phase in phases.items():
        # The load exercised every rule in every phase: spends allowed and refused by the
        # budget, tokens issued, grants revoked and their tokens refused.
        outcomes = phase["outcomes"]
        assert outcomes["verify"].get("yes", 0) > 0, (fault, outcomes)
        assert outcomes["verify"].get("no:budget_exhausted", 0) > 0, (fault, outcomes)
        assert outcomes["verify"].get("no:revoked", 0) > 0, (fault, outcomes)
        assert outcomes["revoke"].get("yes", 0) > 0, (fault, outcomes)
        assert outcomes["exchange"].get("yes", 0) + outcomes["refresh"].get("yes", 0) > 0
    assert report["audit"]["tokens_checked"] > 0
    assert report["ok"]

"""RFC 9396 capabilities: parsing (RAR-01..RAR-08), coverage and narrowing (ARCHITECTURE §5)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from app.core.capabilities import (
    AuthorizationDetail,
    check_type_schema,
    covers,
    find_capability,
    for_audience,
    identifier_covers,
    load_details,
    narrow,
    narrow_details,
    parse_authorization_details,
)
from app.core.envelope import NotCovered
from app.core.errors import InvalidAuthorizationDetails

SHOP = "https://shop.example.com/api"
BANK = "https://bank.example.com"
PAYMENT = "https://shop.example.com/rar/payment"
PAYMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "payee": {"type": "string", "maxLength": 64},
        "actions": {"type": "array", "items": {"enum": ["pay", "refund"]}},
    },
    "required": ["payee"],
}
REGISTRY: dict[str, dict[str, Any]] = {SHOP: {PAYMENT: PAYMENT_SCHEMA}, BANK: {}}


def parse(raw: Any) -> list[AuthorizationDetail]:
    return parse_authorization_details(raw if isinstance(raw, str) else json.dumps(raw), REGISTRY)


def invalid(raw: Any, match: str = "") -> None:
    with pytest.raises(InvalidAuthorizationDetails, match=match) as err:
        parse(raw)
    assert (err.value.status, err.value.error) == (400, "invalid_authorization_details")


def api(**extra: Any) -> dict[str, Any]:
    return {"type": "api", "locations": [SHOP], "actions": ["read", "write"], **extra}


def payment(**extra: Any) -> dict[str, Any]:
    return {
        "type": PAYMENT,
        "locations": [SHOP],
        "actions": ["pay"],
        "payee": "acme",
        "limits": {"max_amount": {"value": "50.00", "currency": "EUR"}},
        **extra,
    }


def test_parse_builtin_and_registered_types() -> None:
    details = parse([api(identifier="orders/*"), payment()])
    assert details[0].actions == ("read", "write")
    assert details[0].identifier == "orders/*"
    assert details[1].extra == {"payee": "acme"}
    assert details[1].limits is not None
    assert str(details[1].limits.max_amount) == "50.00 EUR"
    assert [d.to_dict() for d in details] == [api(identifier="orders/*"), payment()]


def test_locations_are_canonicalised() -> None:
    (detail,) = parse([api(locations=["HTTPS://Shop.Example.com:443/api/"])])
    assert detail.locations == (SHOP,)


def test_decoded_json_is_accepted_too() -> None:
    assert parse_authorization_details([api()], REGISTRY)[0].type == "api"


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("not json", "JSON"),
        ('{"type": "api"}', "array"),
        ("[]", "array"),
        ([api()] * 17, "array"),
        (["api"], "object"),
        ([{"locations": [SHOP]}], "type"),
        ([{"type": 5, "locations": [SHOP]}], "type"),
        ([{"type": "https://unknown.example/type", "locations": [SHOP]}], "not accepted"),
        ([api(colour="red")], "unknown field"),
        ([payment(colour="red")], "unknown field"),
        ([payment(payee=5)], "schema"),
        ([{k: v for k, v in payment().items() if k != "payee"}], "schema"),
        ([api(actions="read")], "actions"),
        ([api(actions=[])], "actions"),
        ([api(actions=["read", "read"])], "repeat"),
        ([api(actions=[1])], "actions"),
        ([{"type": "api", "locations": [SHOP]}], "requires actions"),
        ([api(locations=None)], "locations"),
        ([api(locations=["https://unknown.example.com"])], "unknown location"),
        ([api(locations=["/relative"])], "absolute"),
        ([api(locations=["https://shop.example.com/api#frag"])], "fragment"),
        ([api(locations=[SHOP, SHOP + "/"])], "repeat"),
        ([api(identifier="")], "identifier"),
        ([api(identifier=7)], "identifier"),
        ([payment(limits={"max_amount": {"value": 50, "currency": "EUR"}})], "decimal strings"),
        ([payment(limits={"max_amount": {"value": "50.001", "currency": "EUR"}})], "decimal"),
        ([payment(limits={"max_amount": {"value": "50.00", "currency": "XXX"}})], "ISO 4217"),
        ([payment(limits={"speed": 1})], "unknown limit"),
        ('[{"type": "api", "type": "api"}]', "JSON"),
        ("x" * 20_000, "too large"),
    ],
)
def test_invalid_authorization_details(raw: Any, match: str) -> None:
    invalid(raw, match)


def test_type_names_are_compared_exactly() -> None:  # RAR-08
    invalid([payment(type=PAYMENT.upper())], "not accepted")
    invalid([api(type="API")], "not accepted")


def test_type_registered_at_another_location_only() -> None:
    invalid([payment(locations=[BANK])], "not accepted")


def test_check_type_schema() -> None:
    check_type_schema(PAYMENT_SCHEMA)
    with pytest.raises(ValueError, match="object"):
        check_type_schema({"type": "string"})
    with pytest.raises(ValueError, match="JSON Schema"):
        check_type_schema({"type": "object", "properties": {"a": {"type": 5}}})
    with pytest.raises(ValueError, match="object"):
        check_type_schema(["not", "a", "schema"])


# coverage ---------------------------------------------------------------------------------------


def one(obj: dict[str, Any]) -> AuthorizationDetail:
    return parse([obj])[0]


def test_coverage_rules() -> None:
    granted = one(api(identifier="orders/*"))
    assert covers(granted, one(api(actions=["read"], identifier="orders/1")))
    assert not covers(granted, one(api(actions=["read", "delete"], identifier="orders/1")))
    assert not covers(granted, one(api(identifier="invoices/1")))
    assert not covers(granted, one(api()))  # no identifier = every identifier
    assert not covers(one(api()), one(payment()))
    wide = one(api(locations=[SHOP, BANK]))
    assert covers(wide, one(api()))
    assert not covers(one(api()), wide)


def test_limits_coverage() -> None:
    granted = one(payment())
    assert covers(
        granted, one(payment(limits={"max_amount": {"value": "20.00", "currency": "EUR"}}))
    )
    assert not covers(
        granted, one(payment(limits={"max_amount": {"value": "60.00", "currency": "EUR"}}))
    )
    assert not covers(
        granted, one(payment(limits={"max_amount": {"value": "20.00", "currency": "USD"}}))
    )
    no_limits = {k: v for k, v in payment().items() if k != "limits"}
    assert not covers(granted, one(no_limits))
    assert not covers(granted, one(payment(payee="evil")))


def test_identifier_covers() -> None:
    assert identifier_covers(None, None)
    assert identifier_covers("a*", "abc")
    assert identifier_covers("a*", "a*")
    assert not identifier_covers("a*", None)
    assert not identifier_covers("abc", "abc*")
    assert identifier_covers("abc", "abc")


def test_narrow_inherits_unspecified_parts() -> None:
    granted = one(payment())
    requested = one({"type": PAYMENT, "locations": [SHOP], "payee": "acme"})
    result = narrow(granted, requested)
    assert result.actions == ("pay",)
    assert result.limits == granted.limits
    assert covers(granted, result)


def test_narrow_rejects_wider_requests() -> None:
    granted = one(payment())
    with pytest.raises(NotCovered):
        narrow(granted, one(payment(limits={"max_amount": {"value": "60.00", "currency": "EUR"}})))
    with pytest.raises(NotCovered):
        narrow(granted, one(api()))
    with pytest.raises(NotCovered):
        narrow(one(api(actions=["read"])), one(api()))


def test_narrow_details() -> None:
    granted = [one(api()), one(payment())]
    result = narrow_details(
        granted, [one(payment(limits={"max_amount": {"value": "10.00", "currency": "EUR"}}))]
    )
    assert result[0].limits is not None
    assert str(result[0].limits.max_amount) == "10.00 EUR"
    with pytest.raises(InvalidAuthorizationDetails, match="exceeds the grant"):
        narrow_details(granted, [one(api(actions=["delete"]))])


def test_for_audience_and_find_capability() -> None:
    details = [one(api(locations=[SHOP, BANK], identifier="orders/*")), one(payment())]
    at_bank = for_audience(details, BANK)
    assert [d.locations for d in at_bank] == [(BANK,)]
    assert find_capability(details, location=SHOP, action="pay", identifier=None) == details[1]
    assert (
        find_capability(details, location=SHOP, action="read", identifier="orders/7") == details[0]
    )
    assert find_capability(details, location=SHOP, action="read", identifier="users/7") is None
    assert find_capability(details, location=BANK, action="pay", identifier=None) is None
    assert (
        find_capability(details, location="https://x.example", action=None, identifier=None) is None
    )
    assert find_capability(details, location=BANK, action=None, identifier="orders/1") == details[0]


def test_find_capability_matches_the_type_and_needs_named_actions() -> None:
    no_actions = AuthorizationDetail(type=PAYMENT, locations=(SHOP,))
    details = [no_actions, one(payment())]
    assert find_capability(details, location=SHOP, action="pay", identifier=None) == details[1]
    assert find_capability([no_actions], location=SHOP, action="pay", identifier=None) is None
    assert find_capability([no_actions], location=SHOP, action=None, identifier=None) == no_actions
    as_api = find_capability(details, location=SHOP, action="pay", identifier=None, kind="api")
    assert as_api is None
    found = find_capability(details, location=SHOP, action=None, identifier=None, kind=PAYMENT)
    assert found == no_actions


def test_registered_types_must_declare_granting_members() -> None:
    invalid([payment(identifier="x")], "unknown field 'identifier'")
    invalid([payment(datatypes=["card"])], "unknown field 'datatypes'")
    invalid([payment(actions=["steal"])], "schema violation")


def test_load_details_roundtrip() -> None:
    details = [one(api()), one(payment())]
    assert load_details([d.to_dict() for d in details]) == details
    with pytest.raises(ValueError, match="object"):
        load_details(["api"])


class _Counting(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def schema_host() -> Iterator[str]:
    """A local server that would answer a schema fetch, and counts the attempts."""
    _Counting.hits = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/payee.json"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("keyword", ["$ref", "$dynamicRef"])
def test_a_schema_reference_outside_the_schema_is_refused(schema_host: str, keyword: str) -> None:
    schema = {"type": "object", "properties": {"payee": {keyword: schema_host}}}
    with pytest.raises(ValueError, match="references must point inside the schema"):
        check_type_schema(schema)
    assert _Counting.hits == 0


def test_a_reference_inside_the_schema_resolves() -> None:
    schema = {
        "type": "object",
        "$defs": {"payee": {"type": "string", "maxLength": 4}},
        "properties": {"actions": {}, "payee": {"$ref": "#/$defs/payee"}},
    }
    check_type_schema(schema)
    registry = {SHOP: {PAYMENT: schema}}
    detail = {"type": PAYMENT, "locations": [SHOP], "actions": ["pay"], "payee": "acme"}
    assert parse_authorization_details(json.dumps([detail]), registry)[0].extra["payee"] == "acme"
    with pytest.raises(InvalidAuthorizationDetails, match="schema violation"):
        parse_authorization_details(json.dumps([{**detail, "payee": "too long"}]), registry)


def test_a_stored_schema_with_a_remote_reference_is_never_fetched(schema_host: str) -> None:
    """A schema stored before references were checked fails closed, offline."""
    schema = {"type": "object", "properties": {"actions": {}, "payee": {"$ref": schema_host}}}
    detail = {"type": PAYMENT, "locations": [SHOP], "actions": ["pay"], "payee": "acme"}
    with pytest.raises(InvalidAuthorizationDetails, match="cannot be resolved"):
        parse_authorization_details(json.dumps([detail]), {SHOP: {PAYMENT: schema}})
    assert _Counting.hits == 0

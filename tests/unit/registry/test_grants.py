"""The grant registry is the one list of grants: /token dispatches on it, the metadata
document advertises it and client registration accepts it."""

from __future__ import annotations

from app.core import urns
from app.registry.grants import Grant, grant_types, grants


def test_every_grant_module_declares_itself_once() -> None:
    assert grant_types() == [
        urns.CIBA_GRANT,
        urns.REFRESH_GRANT,
        urns.TOKEN_EXCHANGE_GRANT,
        urns.AUTHORIZATION_CODE_GRANT,
        urns.CLIENT_CREDENTIALS_GRANT,
    ]
    for grant_type, grant in grants().items():
        assert isinstance(grant, Grant)
        assert grant.grant_type == grant_type
        assert grant.parameters, grant_type
        assert "grant_type" not in grant.parameters  # the endpoint reads it, not the grant
    metrics = [g.metric for g in grants().values()]
    assert metrics == [
        "ciba",
        "refresh_token",
        "token_exchange",
        "authorization_code",
        "client_credentials",
    ]

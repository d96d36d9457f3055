"""Standard OAuth clients: the authorization-code grant, public and secret-holding clients,
Bearer-accepting resource servers with scopes, and refresh families bound to a DPoP key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.alter_column("owner_id", existing_type=sa.String(length=40), nullable=True)
        batch.add_column(sa.Column("secret_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("grant_requests") as batch:
        batch.add_column(sa.Column("authorization_request", sa.JSON(), nullable=True))
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("jkt", sa.String(length=64), nullable=True))
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=1000), nullable=True))
    with op.batch_alter_table("resource_servers") as batch:
        batch.add_column(
            sa.Column("dpop_required", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("scopes", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("auth_req_id", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["auth_req_id"],
            ["grant_requests.auth_req_id"],
            name=op.f("fk_authorization_codes_auth_req_id_grant_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_authorization_codes_grant_id_grants")
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_authorization_codes")),
    )
    op.create_index(op.f("ix_authorization_codes_grant_id"), "authorization_codes", ["grant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_authorization_codes_grant_id"), table_name="authorization_codes")
    op.drop_table("authorization_codes")
    with op.batch_alter_table("resource_servers") as batch:
        batch.drop_column("scopes")
        batch.drop_column("dpop_required")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("jkt")
    with op.batch_alter_table("grant_requests") as batch:
        batch.drop_column("authorization_request")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("secret_hash")
        batch.alter_column("owner_id", existing_type=sa.String(length=40), nullable=False)

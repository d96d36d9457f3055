"""Spend ledger for the verifier's budgets; revocations remember when they were published.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spend_ledger",
        sa.Column("entry_id", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=40), nullable=False),
        sa.Column("bucket", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_spend_ledger")),
    )
    op.create_index(
        "ix_spend_ledger_grant_bucket", "spend_ledger", ["grant_id", "bucket", "currency"]
    )
    with op.batch_alter_table("revocations") as batch:
        batch.add_column(sa.Column("published_at", sa.BigInteger(), nullable=True))
    # Everything revoked before this revision counts as published.
    op.execute("UPDATE revocations SET published_at = created_at")
    op.create_index("ix_revocations_published_at", "revocations", ["published_at"])


def downgrade() -> None:
    op.drop_index("ix_revocations_published_at", table_name="revocations")
    with op.batch_alter_table("revocations") as batch:
        batch.drop_column("published_at")
    op.drop_index("ix_spend_ledger_grant_bucket", table_name="spend_ledger")
    op.drop_table("spend_ledger")

"""Humans who let another human's agents ask them for approvals (``login_hint``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_requesters",
        sa.Column("human_id", sa.String(length=40), nullable=False),
        sa.Column("requester_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["human_id"], ["humans.id"], name=op.f("fk_approval_requesters_human_id_humans")
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["humans.id"],
            name=op.f("fk_approval_requesters_requester_id_humans"),
        ),
        sa.PrimaryKeyConstraint("human_id", "requester_id", name=op.f("pk_approval_requesters")),
    )


def downgrade() -> None:
    op.drop_table("approval_requesters")

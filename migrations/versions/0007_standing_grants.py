"""Standing grants: a request (and the grant it becomes) may be standing, redeemed by its
agent with the client-credentials grant while it lives.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("grant_requests", "grants"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("standing", sa.Boolean(), nullable=False, server_default=sa.false())
            )
    op.create_index("ix_grants_agent_standing", "grants", ["agent_id", "standing"])


def downgrade() -> None:
    op.drop_index("ix_grants_agent_standing", table_name="grants")
    for table in ("grants", "grant_requests"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("standing")

"""Access tokens are found by the token they were exchanged from, so revoking one reaches
every token derived from it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 01:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_access_tokens_parent_jti"), "access_tokens", ["parent_jti"])


def downgrade() -> None:
    op.drop_index(op.f("ix_access_tokens_parent_jti"), table_name="access_tokens")

"""The verifier's read-only PostgreSQL role: SELECT on named columns, nothing else."""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.db import create_engine
from app.store.readonly import readable_columns

# table → the columns the verifier's queries read (derived from them in app.store.readonly):
# sealed private keys, refresh tokens, passkeys, sessions and the audit log stay out of reach.
READABLE_COLUMNS: dict[str, tuple[str, ...]] = readable_columns()
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _literal(value: str) -> str:
    if "\x00" in value:
        raise ValueError("the password must not contain NUL")
    return "'" + value.replace("'", "''") + "'"


async def _grant(connection: AsyncConnection, role: str, password: str | None) -> None:
    exists = await connection.scalar(
        text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
    )
    login = f"LOGIN PASSWORD {_literal(password)}" if password else "LOGIN"
    verb = "ALTER" if exists else "CREATE"
    await connection.execute(text(f'{verb} ROLE "{role}" {login}'))
    await connection.execute(text(f'ALTER ROLE "{role}" SET default_transaction_read_only = on'))
    database = await connection.scalar(text("SELECT current_database()"))
    await connection.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"'))
    await connection.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
    await connection.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"'))
    for table, columns in READABLE_COLUMNS.items():
        names = ", ".join(columns)
        await connection.execute(text(f'GRANT SELECT ({names}) ON "{table}" TO "{role}"'))


async def ensure_readonly_role(database_url: str, role: str, password: str | None) -> None:
    """Create or update ``role`` with read access to :data:`READABLE_COLUMNS` only.

    Run it after the migrations (it grants on their tables), as a role allowed to create
    roles; it is idempotent. PostgreSQL only: SQLite has no roles.
    """
    if not _ROLE.match(role):
        raise ValueError("the role name must be lower-case letters, digits and underscores")
    if not database_url.startswith("postgresql"):
        raise ValueError("read-only roles need PostgreSQL")
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await _grant(connection, role, password)
    finally:
        await engine.dispose()

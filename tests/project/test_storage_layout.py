"""All SQL lives in ``app/store``: outside it, code may hold a session, an engine and the
driver's exceptions, but builds no statement and looks up no table row by itself (the
import-linter contract covers the routes; this covers every other module)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
# What a module outside the store may take from SQLAlchemy: types to hold and errors to catch.
ALLOWED = {
    "sqlalchemy.ext.asyncio": {
        "AsyncSession",
        "AsyncEngine",
        "AsyncConnection",
        "async_sessionmaker",
    },
    "sqlalchemy.engine": {"make_url", "URL"},
}
ROW_LOOKUPS = {"get", "execute", "scalar", "scalars", "delete", "merge"}


def _outside_store() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if (APP / "store") not in p.parents)


def _sqlalchemy_imports(tree: ast.AST) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found += [(node.module or "", alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "*") for a in node.names if a.name.startswith("sqlalchemy")]
    return found


def _models_imported(tree: ast.AST) -> set[str]:
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "app.store.models"
        for alias in node.names
    }


@pytest.mark.parametrize("path", _outside_store(), ids=lambda p: str(p.relative_to(APP)))
def test_no_module_outside_the_store_builds_sql(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for module, name in _sqlalchemy_imports(tree):
        if module == "sqlalchemy.exc":
            continue
        assert name in ALLOWED.get(module, set()), f"{path.name} imports {name} from {module}"


@pytest.mark.parametrize("path", _outside_store(), ids=lambda p: str(p.relative_to(APP)))
def test_no_module_outside_the_store_looks_up_a_table_row(path: Path) -> None:
    tree = ast.parse(path.read_text())
    models = _models_imported(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ROW_LOOKUPS
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in models
        ):
            pytest.fail(
                f"{path.name}:{node.lineno} calls .{node.func.attr}({node.args[0].id}, ...)"
            )


def test_the_check_sees_a_query_built_outside_the_store(tmp_path: Path) -> None:
    """The two rules above fail on the code they forbid."""
    module = tmp_path / "bad.py"
    module.write_text(
        "from sqlalchemy import select\n"
        "from app.store.models import Agent\n"
        "async def f(session):\n"
        "    return await session.get(Agent, 'x')\n"
    )
    tree = ast.parse(module.read_text())
    assert ("sqlalchemy", "select") in _sqlalchemy_imports(tree)
    assert _models_imported(tree) == {"Agent"}

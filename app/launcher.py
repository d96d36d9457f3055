"""The ``agentauth`` command's entry point: the command line needs the server's
dependencies, which an SDK-only install (``pip install agentauth-server``) leaves out."""

from __future__ import annotations

import sys

SERVER_EXTRA = "pip install 'agentauth-server[server]'"


def main() -> None:
    try:
        from app.cli import main as cli_main
    except ModuleNotFoundError as exc:
        sys.stderr.write(
            f"error: the agentauth command needs the server's dependencies ({exc.name} is"
            f" missing); install them with: {SERVER_EXTRA}\n"
        )
        raise SystemExit(2) from None
    cli_main()

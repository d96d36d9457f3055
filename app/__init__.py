"""AgentAuth: an authorization server for AI agents."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agentauth-server")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

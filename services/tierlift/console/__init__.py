"""The web console (`/console`): spend, requests, quality, rollouts, keys and budgets for platform
teams, behind the same API keys and roles as the CLI. Mounted on the gateway's HTTP server, or
served alone by `python -m tierlift.console.main`."""

from tierlift.console._app import PREFIX, build_console
from tierlift.console._auth import Sessions
from tierlift.console._backend import Backend

__all__ = ["PREFIX", "Backend", "Sessions", "build_console"]

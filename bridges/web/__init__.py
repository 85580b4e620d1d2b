"""The browser bridge: the drum machine page, its websocket protocol and a REST API."""

from __future__ import annotations

from bridges.web.app import create_app
from bridges.web.server import WebConfigError, WebServer, serve

__all__ = ["WebConfigError", "WebServer", "create_app", "serve"]

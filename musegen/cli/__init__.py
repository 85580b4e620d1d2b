"""The core `musegen` command line (no I/O adapters); `bridges.cli` adds live and ports."""

from __future__ import annotations

from musegen.cli.errors import UserError
from musegen.cli.main import build_parser, main, run_parser

__all__ = ["UserError", "build_parser", "main", "run_parser"]

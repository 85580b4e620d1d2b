"""musegen: a real-time music generation engine (the core: no device or network I/O)."""

from __future__ import annotations

__version__ = "0.1.0"

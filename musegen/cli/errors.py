"""The one error type every command raises for a problem with what the user asked for."""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user asked for: printed as one line, no traceback."""

"""`python -m bridges ...` is the `musegen` script (useful where the script is not on PATH)."""

from __future__ import annotations

import sys

from bridges.cli import main

sys.exit(main())

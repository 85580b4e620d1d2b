from __future__ import annotations

from musegen.cli import main

raise SystemExit(main())

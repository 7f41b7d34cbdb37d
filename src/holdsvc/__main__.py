"""``python -m holdsvc``: the same as the ``holdsvc`` command."""

from __future__ import annotations

from holdsvc.cli import main

raise SystemExit(main())

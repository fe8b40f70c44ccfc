"""Put the repository on ``sys.path`` and start Django with ``bench.settings``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup() -> None:
    """Idempotent: make ``reviewer``, ``tests`` and ``bench`` importable and call ``django.setup()``."""
    root = str(ROOT)
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)  # before site-packages: this repository's `tests` package wins
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()

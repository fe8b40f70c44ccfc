#!/usr/bin/env python
"""Django's command-line utility for reviewer."""

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewer.settings")
    # Run with this checkout's .venv and no SECRET_KEY: a developer's machine, so the
    # README's commands work as written. A deployment sets SECRET_KEY and stays strict.
    checkout_venv = Path(__file__).resolve().parent / ".venv"
    if "SECRET_KEY" not in os.environ and Path(sys.prefix).resolve() == checkout_venv.resolve():
        os.environ.setdefault("DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

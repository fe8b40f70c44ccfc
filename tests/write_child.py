"""Run one sync or import in a process of its own, for tests/test_kill.py to kill at a random point.

    python -m tests.write_child sync SOURCE_NAME BATCH_ID
    python -m tests.write_child import PATH

DJANGO_SETTINGS_MODULE and DATABASE_URL name the test database. Prints "ready" once
Django is set up (the parent starts its clock then) and "done" at the end.
"""

from __future__ import annotations

import sys


def main() -> None:
    import django

    django.setup()
    from reviewer import fetch, importers
    from reviewer.models import Source

    print("ready", flush=True)
    kind, *args = sys.argv[1:]
    if kind == "sync":
        fetch.fetch_batch(Source.objects.get(name=args[0]), args[1])
    else:
        with open(args[0], "rb") as binary:
            importers.import_file(binary, name=args[0].rsplit("/", 1)[-1])
    print("done", flush=True)


if __name__ == "__main__":
    main()

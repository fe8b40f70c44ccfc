"""Bench settings: the real settings as production runs them (DEBUG off), on the bench's own database.

``BENCH_DB`` names a SQLite file in a temporary directory made by ``bench/run.py``: a
developer's ``reviewer.sqlite3`` (or ``DATABASE_URL``) is never touched.
"""

import os
import warnings

if not os.environ.get("BENCH_DB"):
    raise RuntimeError("BENCH_DB is not set: run the bench with `make bench` (bench/run.py).")

# Forced, not defaulted: an exported DATABASE_URL must not send the bench to a real database.
os.environ.update(
    DEBUG="0",  # DEBUG on would log every query (memory and time the product does not spend)
    SECRET_KEY="bench-only-secret-key-0123456789abcdef",
    ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
    SECURE_COOKIES="0",
    SSL_REDIRECT="0",  # the test client speaks plain http
    LOG_LEVEL="WARNING",
    DATABASE_URL="sqlite:///" + os.environ["BENCH_DB"],
)
os.environ.pop("ENCRYPTION_KEY", None)

from reviewer.settings import *  # noqa: E402,F403

# No collectstatic in a bench run: templates resolve {% static %} without a manifest.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# WhiteNoise warns that STATIC_ROOT was never collected; the bench serves no static file.
warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

"""Test settings: the real settings with a fixed development key."""

import os
import tempfile

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key")

from reviewer.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405

if DATABASES["default"]["ENGINE"] == "reviewer.sqlite":  # noqa: F405
    # The test database is a file, like production's, not pytest-django's in-memory
    # default: tests/test_concurrency.py needs threads on their own connections with
    # WAL and the busy timeout. One file per test run (its pid, inherited by anything it
    # starts), so runs at the same time on one machine never share it; pytest-django
    # deletes it at the end.
    _test_db = os.environ.setdefault(
        "REVIEWER_TEST_SQLITE", os.path.join(tempfile.gettempdir(), f"reviewer-test-{os.getpid()}.sqlite3")
    )
    DATABASES["default"]["TEST"] = {"NAME": _test_db}  # noqa: F405

MEDIA_ROOT = tempfile.mkdtemp(prefix="reviewer-test-media-")
MEDIA_FETCH_PRIVATE_HOSTS = True  # the provider fakes and their media live on 127.0.0.1

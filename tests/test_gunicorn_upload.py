"""The documented 200 MB upload finishes under the README's production command (gunicorn, 30 s worker timeout).

The Import page only saves the upload and queues its import for the background worker,
so the request lasts as long as the transfer, not as long as the import (which took
longer than gunicorn's timeout for a file this size, and the worker was killed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bench import load

pytestmark = pytest.mark.django_db  # the suite's own database is not used; this keeps pytest-django's order

LIMIT = 200 * 1024 * 1024
USERNAME, PASSWORD = "uploader", "upload-" + os.urandom(8).hex()


def write_file_of(path: Path, size: int) -> None:
    """A NomadicML batch JSON of exactly ``size`` bytes (its contents are the worker's business, not the upload's)."""
    head, tail = b'{"batch_metadata": {"batch_id": "big-upload"}, "results": [], "padding": "', b'"}'
    with path.open("wb") as out:
        out.write(head)
        block = b"x" * (1 << 20)
        left = size - len(head) - len(tail)
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)
        out.write(tail)


def test_a_200_mb_upload_finishes_under_the_readme_gunicorn_command(tmp_path):
    env = load.production_environment(tmp_path)
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--no-input", "-v0"], ["collectstatic", "--no-input", "-v0"]):
        subprocess.run([*manage, *command], cwd=load.ROOT, env=env, check=True)
    create = f"from django.contrib.auth.models import User, Group; u = User.objects.create_user({USERNAME!r}, password={PASSWORD!r}); u.groups.add(Group.objects.get(name='reviewer'))"  # noqa: E501
    subprocess.run([*manage, "shell", "-c", create], cwd=load.ROOT, env=env, check=True)
    upload = tmp_path / "big-upload.json"
    write_file_of(upload, LIMIT - 1024)

    server = load.Gunicorn(tmp_path, env, workers=3)  # the README's flags: sync workers, default 30 s timeout
    server.start()
    try:
        session = requests.Session()
        session.cookies.update(load.log_in(server.url, USERNAME, PASSWORD))
        began = time.monotonic()
        with upload.open("rb") as binary:
            response = session.post(
                f"{server.url}/import/",
                data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
                files={"file": (upload.name, binary, "application/json")},
                headers={"Referer": server.url + "/"},
                allow_redirects=False,
                timeout=120,
            )
        took = time.monotonic() - began
        assert response.status_code == 302, (response.status_code, server.log_tail())
        assert "/imports/" in response.headers["Location"]
        assert took < 30, f"the upload took {took:.1f} s: gunicorn's 30 s timeout would kill its worker"
        status = session.get(server.url + response.headers["Location"], timeout=30)
        assert status.status_code == 200 and "big-upload.json" in status.text  # queued: the worker imports it
        assert "WORKER TIMEOUT" not in server.log_tail(200)
    finally:
        server.stop()
    stored = list((tmp_path / "media" / "uploads").glob("*.upload"))
    assert [os.path.getsize(path) for path in stored] == [LIMIT - 1024]  # saved whole, for the worker

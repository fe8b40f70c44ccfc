"""Fixtures shared by the suite: users of each role and logged-in clients."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("alice", password="pw-alice", is_staff=True)


@pytest.fixture
def reviewer_user(db) -> User:
    user = User.objects.create_user("rita", password="pw-rita")
    user.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    return user


@pytest.fixture
def viewer(db) -> User:
    return User.objects.create_user("victor", password="pw-victor")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache: ids are reused after a rollback, and cached numbers must not leak."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def worker_keeps_the_test_connection(monkeypatch):
    """Let ``manage.py db_worker`` run inside a test's transaction, on every database.

    The worker calls ``close_old_connections()``, which closes a connection whose
    autocommit is off: the test's own, wrapped in a transaction. In-memory SQLite
    ignores the close; a file or PostgreSQL does not, and the test would lose its data.
    Django's test client skips that call for the same reason; so does the worker here,
    while a test transaction is open (a transaction=True test keeps the real behaviour).
    """
    from django.db import close_old_connections, connection
    from django_tasks_db.management.commands import db_worker

    def close_unless_in_test_transaction(**kwargs):
        if not connection.in_atomic_block:
            close_old_connections(**kwargs)

    monkeypatch.setattr(db_worker, "close_old_connections", close_unless_in_test_transaction)


@pytest.fixture
def api_tokens(staff, reviewer_user, viewer) -> dict[str, str]:
    """An API token per role: {"staff": …, "reviewer": …, "viewer": …}."""
    from reviewer.models import ApiToken

    return {role: ApiToken.issue(user, f"{role} token")[1]
            for role, user in (("staff", staff), ("reviewer", reviewer_user), ("viewer", viewer))}  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    """The test client's keyword for an Authorization header."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


# --- Browser tests: Playwright driving Debian's Chromium (never a downloaded browser) ---

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    import os

    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls in
    # the test body are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def log_in(page, live_server, username: str, password: str) -> None:
    """Log in through the login form, as a person would."""
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


@pytest.fixture
def logged_in_page(page, live_server, staff):
    log_in(page, live_server, "alice", "pw-alice")
    return page


# --- Provider fakes: real HTTP servers on 127.0.0.1 speaking each wire format ---

TL_KEY = "tlk_SECRET_4e1f9c2a7b3d"
NM_KEY = "nmk_SECRET_8a6c0e2f4b1d"


@pytest.fixture(autouse=True)
def fast_http(monkeypatch):
    """Short timeouts and no backoff waits: a retried call costs milliseconds (Retry-After still counts)."""
    from reviewer.providers import http

    monkeypatch.setattr(http, "DEFAULT_TIMEOUT", (2.0, 2.0))
    monkeypatch.setattr(http, "BACKOFF_FACTOR", 0.0)
    monkeypatch.setattr(http, "BACKOFF_JITTER", 0.0)


@pytest.fixture
def twelvelabs_fake():
    from tests.fakes.server import FakeServer
    from tests.fakes.twelvelabs import PREFIX, TwelveLabsFake

    with FakeServer(TwelveLabsFake(TL_KEY)) as server:
        server.app.base_url = server.url + PREFIX
        yield server.app


@pytest.fixture
def nomadic_fake():
    from tests.fakes.nomadicml import NomadicFake
    from tests.fakes.server import FakeServer

    with FakeServer(NomadicFake(NM_KEY)) as server:
        server.app.base_url = server.url
        yield server.app


@pytest.fixture
def tl_source(db, twelvelabs_fake):
    from reviewer.models import Source

    source = Source(name="tl", provider="twelvelabs", base_url=twelvelabs_fake.base_url)
    source.set_api_key(TL_KEY)
    source.save()
    return source


@pytest.fixture
def nomadic_source(db, nomadic_fake):
    from reviewer.models import Source

    source = Source(name="nm", provider="nomadicml", base_url=nomadic_fake.base_url,
                    viewer_base_url="https://app.nomadicml.com")  # fmt: skip
    source.set_api_key(NM_KEY)
    source.save()
    return source


# --- Media: real video files (Debian's ffmpeg) behind a fake CDN on 127.0.0.1 ---


@pytest.fixture(scope="session")
def media_files(tmp_path_factory):
    from tests.fakes.cdn import make_media

    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture
def cdn(media_files):
    from tests.fakes.cdn import CdnFake
    from tests.fakes.server import FakeServer

    with FakeServer(CdnFake(media_files)) as server:
        server.app.base_url = server.url
        yield server.app


def give_tl_videos(twelvelabs_fake, cdn, task_ids: list[str], *, hls_ready: bool = True) -> None:
    """Make each TwelveLabs task name an asset whose HLS stream and thumbnail the CDN serves."""
    for n, task_id in enumerate(task_ids):
        asset_id = f"{0xA5500 + n:024x}"
        twelvelabs_fake.tasks[task_id] = {
            "task_id": task_id, "status": "ready",
            "video_source": {"type": "asset", "asset_id": asset_id, "system_metadata": {"duration": 20.0}},
        }  # fmt: skip
        twelvelabs_fake.assets[asset_id] = lambda n=n, asset_id=asset_id: {
            "_id": asset_id, "status": "ready", "filename": f"cam{n}.mp4", "duration": 20.0,
            "hls": {"status": "ready", "manifest_url": cdn.signed_url("hls/index.m3u8")}
            if hls_ready else {"status": "processing"},
            "thumbnail": {"status": "ready", "representative_url": cdn.signed_url("thumb.jpg", 3600)},
        }  # fmt: skip

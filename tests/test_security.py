"""Security over the whole project: every URL's access rules, CSRF, hostile provider data, secrets, headers, logins."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.html import escape

from reviewer import crypto, fetch, review, sampling
from reviewer.models import ApiToken, Batch, Event, SecondReview, Source, SyncRun, Webhook
from tests.factories import import_bytes, jsonl, nomadic_analysis, nomadic_event, nomadic_result, tl_id, tl_line
from tests.fakes import twelvelabs as tl

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent

# Every named URL of the project (the admin apart), with the method it answers and who may use it.
# A new URL must be added here, so nobody ships one without deciding its access rule.
READ = "read"  # any logged-in user
ACTION = "action"  # reviewers and staff; a viewer gets 403
STAFF = "staff"  # staff only; a viewer (and a reviewer) gets 403
OWNER = "owner"  # any logged-in user, on their own objects only; someone else's is a 404
ASSIGNEE = "assignee"  # only the user a second review is assigned to (here: staff); anyone else gets 403
URLS = {
    "batch_list": ("GET", READ),
    "batch_detail": ("GET", READ),
    "batch_export": ("GET", READ),
    "batch_activity": ("GET", READ),
    "review_mode": ("GET", READ),
    "event_history": ("GET", READ),
    "event_media": ("GET", READ),
    "event_pane": ("GET", READ),
    "stored_image": ("GET", READ),
    "batch_status": ("GET", READ),
    "batch_add": ("GET", ACTION),
    "batch_recent": ("GET", ACTION),
    "bulk_confirm": ("GET", ACTION),
    "event_note": ("GET", ACTION),
    "import_results": ("GET", ACTION),
    "import_status": ("GET", ACTION),
    "batch_sync": ("POST", ACTION),
    "batch_decisions": ("POST", ACTION),
    "batch_undo": ("POST", ACTION),
    "event_decision": ("POST", ACTION),
    "batch_handoff": ("GET", READ),
    "batch_insights": ("GET", READ),
    "batch_insights_csv": ("GET", READ),
    "all_insights": ("GET", READ),
    "search": ("GET", READ),
    "all_insights_csv": ("GET", READ),
    "sample_create": ("POST", ACTION),
    "sample_detail": ("GET", READ),
    "second_review_create": ("POST", ACTION),
    "second_review_results": ("GET", READ),
    "second_review_next": ("GET", ASSIGNEE),
    "second_review_decide": ("POST", ASSIGNEE),
    "api_tokens": ("GET", READ),
    "revoke_token": ("POST", OWNER),
    "webhook_list": ("GET", STAFF),
    "webhook_detail": ("GET", STAFF),
    "webhook_action": ("POST", STAFF),
}
PUBLIC = {"healthz", "login", "logout"}
# The API (reviewer/api) authenticates by token, not session: tests/test_api.py calls each
# operation as anonymous, with a bad or revoked token, and as a viewer, a reviewer and staff.
TOKEN_AUTH = {
    "api-root", "openapi-json", "openapi-view", "list_sources", "list_batches", "add_batch", "get_batch",
    "start_sync", "sync_state", "list_events", "list_items", "get_handoff", "get_event", "event_history", "decide",
    "decide_many", "undo", "list_webhooks", "batch_quality", "all_quality",
}  # fmt: skip


def named_patterns() -> set[str]:
    names = set()
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLPattern) and entry.name:
            names.add(entry.name)
        elif isinstance(entry, URLResolver) and entry.app_name != "admin":
            names.update(p.name for p in entry.url_patterns if p.name)
    return names


@pytest.fixture
def admin_client(client, db):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("root", password="pw-root"))
    return client


@pytest.fixture
def batch(staff) -> Batch:
    result = nomadic_result("v1", [nomadic_event(), nomadic_event(label="second")],
                            import_source_uri="https://cdn.example.com/v1.mp4")  # fmt: skip
    run = import_bytes(json.dumps(nomadic_analysis("rr-sec", [result])).encode(), "sec.json")
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    default_storage.save(STORED_IMAGE, ContentFile(b"\xff\xd8\xff\xe0 a stored thumbnail"))
    review.decide(run.batch.events.first(), "approved", staff)
    return run.batch


STORED_IMAGE = "thumbs/security/item.jpg"


def url_of(name: str, batch: Batch) -> str:
    if name == "import_status":
        return reverse(name, args=[SyncRun.objects.filter(trigger="import").first().pk])
    if name == "stored_image":
        return reverse(name, args=[STORED_IMAGE])
    if name in ("event_decision", "event_history", "event_media", "event_pane", "event_note"):
        return reverse(name, args=[batch.events.first().pk])
    if name == "batch_export":
        return reverse(name, args=[batch.pk, "csv"])
    if name in (
        "batch_list",
        "batch_add",
        "batch_recent",
        "import_results",
        "api_tokens",
        "webhook_list",
        "all_insights",
        "all_insights_csv",
        "search",
    ):
        return reverse(name)
    if name == "revoke_token":  # staff's: the viewer's test asks for someone else's
        return reverse(name, args=[ApiToken.issue(User.objects.get(username="alice"), "t")[0].pk])
    if name == "sample_detail":
        return reverse(name, args=[sampling.create_sample(batch, "category", 1, None).pk])
    if name in ("second_review_results", "second_review_next", "second_review_decide"):
        second = SecondReview.objects.first() or SecondReview.objects.create(
            batch=batch, reviewer=User.objects.get(username="alice"), share=1.0, seed=1)  # fmt: skip
        item = second.items.first() or second.items.create(event=batch.events.first(), first_approval="approved")
        return reverse(name, args=[second.pk, item.pk] if name == "second_review_decide" else [second.pk])
    if name in ("webhook_detail", "webhook_action"):
        hook = Webhook.objects.first() or Webhook.objects.create(url="https://hooks.example.com/x", events=[],
                                                                 secret_encrypted=crypto.encrypt("s"))  # fmt: skip
        return reverse(name, args=[hook.pk, "test"] if name == "webhook_action" else [hook.pk])
    return reverse(name, args=[batch.pk])


def call(client: Client, name: str, batch: Batch, **extra):
    method, _ = URLS[name]
    data = {"decision": "approved", "event": batch.events.first().pk} if method == "POST" else {}
    return getattr(client, method.lower())(url_of(name, batch), data, **extra)


def test_every_url_has_an_access_rule():
    assert named_patterns() == set(URLS) | PUBLIC | TOKEN_AUTH


@pytest.mark.parametrize("name", sorted(URLS))
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, batch, name):
    response = call(client, name, batch)
    assert response.status_code == 302 and response.url.startswith("/accounts/login/?next=")


@pytest.mark.parametrize("name", sorted(URLS))
def test_a_viewer_reads_but_gets_403_on_every_action(viewer_client, batch, name):
    response = call(viewer_client, name, batch)
    if URLS[name][1] in (ACTION, STAFF, ASSIGNEE):
        assert response.status_code == 403
    elif URLS[name][1] == OWNER:
        assert response.status_code == 404
    else:
        assert response.status_code == 200
    assert batch.events.filter(decided_by__username="victor").count() == 0


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/reviewer/source/", "/admin/reviewer/source/add/", "/admin/auth/user/"]
)
def test_staff_pages_refuse_a_reviewer(client, reviewer_user, path):
    client.force_login(reviewer_user)
    response = client.get(path)
    assert response.status_code == 302 and response.url.startswith("/admin/login/")  # the admin's own refusal


def test_health_check_is_public_and_says_nothing_else(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("name", sorted(name for name, (method, _) in URLS.items() if method == "POST"))
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_every_post_needs_the_csrf_token(staff, batch, name, htmx):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    headers = {"HX-Request": "true"} if htmx else {}
    assert call(client, name, batch, headers=headers).status_code == 403
    # With the token (htmx sends it as X-CSRFToken, from the page's hx-headers), it passes.
    page = client.get(batch.get_absolute_url()).content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    assert call(client, name, batch, headers={**headers, "X-CSRFToken": token}).status_code != 403


def test_the_login_and_logout_forms_need_the_csrf_token(staff):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"}).status_code == 403
    client.force_login(staff)
    assert client.post("/accounts/logout/").status_code == 403


# --- Hostile provider data ---

SCRIPT = '<script>alert("x")</script>'
PAYLOADS = [SCRIPT, '"><img src=x onerror=alert(1)>', "'><svg onload=alert(1)>", "{{ 7*7 }}</textarea><b>bold</b>"]
BAD_URLS = ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", " JaVaScRiPt:alert(1)", "vbscript:x"]


def hostile_nomadic(payload: str, bad_url: str) -> dict:
    """A NomadicML batch with the payload in every text field and bad URLs in every URL field."""
    event = nomadic_event(
        category=payload, label=payload, severity=payload, aiAnalysis=payload,
        annotated_thumbnail_url=bad_url, approval="pending",
    )  # fmt: skip
    return nomadic_analysis(
        "rr-hostile",
        [
            nomadic_result("v1", [event], video_name=payload, summary=payload, import_source_uri=bad_url,
                           analysis_id=payload),  # fmt: skip
            nomadic_result("v2", [], status="failed", error=payload, video_name=f"failed {payload}"),
        ],
        prompt=payload, category=payload, batch_viewer_url=bad_url, review_status=payload,
        metadata={payload: payload},
    )  # fmt: skip


def hostile_twelvelabs(payload: str) -> bytes:
    segments = {payload: [{"start_time": 1, "end_time": 2, "metadata": {"label": payload, "severity": payload}}]}
    return jsonl([
        tl_line(tl_id(1), segments=segments, custom_id=payload),
        tl_line(tl_id(2), "failed", error={"code": payload, "message": payload}),
        tl_line(tl_id(3), text=payload, custom_id=f"text {payload}"),
        "{not json " + payload,
    ])  # fmt: skip


def pages_showing(client: Client, batch: Batch) -> dict[str, str]:
    event = batch.events.first()
    urls = {
        "list": reverse("batch_list"), "detail": batch.get_absolute_url(),
        "detail-filtered": f"{batch.get_absolute_url()}?q=a&sort=severity",
        "review": reverse("review_mode", args=[batch.pk]), "activity": reverse("batch_activity", args=[batch.pk]),
        "history": reverse("event_history", args=[event.pk]),
        "confirm": f"{reverse('bulk_confirm', args=[batch.pk])}?decision=approved",
        "admin-batch": reverse("admin:reviewer_batch_change", args=[batch.pk]),
        "admin-events": reverse("admin:reviewer_event_changelist"),
    }  # fmt: skip
    pages = {}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, name
        pages[name] = response.content.decode()
    # The same data through htmx fragments: a decision's answer and the results swap.
    response = client.post(
        reverse("event_decision", args=[event.pk]), {"decision": "rejected"}, headers={"HX-Request": "true"}
    )
    pages["decision-fragment"] = response.content.decode()
    pages["results-fragment"] = client.get(
        batch.get_absolute_url(), headers={"HX-Request": "true", "HX-Target": "results"}
    ).content.decode()
    return pages


def assert_inert(pages: dict[str, str], payload: str) -> None:
    for name, body in pages.items():
        assert payload not in body, f"{name} renders the payload as markup"
        assert not re.search(r"""(?:href|src|action)\s*=\s*["']?\s*(?:javascript|data|vbscript):""", body, re.I), name


@pytest.mark.parametrize(("payload", "bad_url"), list(zip(PAYLOADS, BAD_URLS, strict=True)))
def test_hostile_nomadicml_data_is_shown_as_text(admin_client, payload, bad_url):
    run = import_bytes(json.dumps(hostile_nomadic(payload, bad_url)).encode(), f"{payload}.json")
    assert run.outcome == "succeeded", run.error
    pages = pages_showing(admin_client, run.batch)
    assert_inert(pages, payload)
    assert escape(payload) in pages["detail"]  # shown, escaped: a reviewer can still read what the provider sent
    assert escape(bad_url.strip()) in pages["detail"]  # a bad URL is shown as text, not dropped


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_twelvelabs_data_and_malformed_lines_are_shown_as_text(admin_client, payload):
    run = import_bytes(
        hostile_twelvelabs(payload), "68f4ddaf8aaa60d33df0e8aa.jsonl", skip_invalid=True, mode="time_based_metadata"
    )
    assert run.outcome == "succeeded" and len(run.malformed_lines) == 1
    assert_inert(pages_showing(admin_client, run.batch), payload)


def test_a_hostile_file_name_on_the_import_page_is_shown_as_text(staff_client, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.test_views_actions import import_through_the_page

    name = "<img src=x onerror=alert(1)>.jsonl"  # no "/": a browser sends only the base name
    _, response = import_through_the_page(
        staff_client, SimpleUploadedFile(name, b"{bad json\n"), django_capture_on_commit_callbacks
    )
    body = response.content.decode()
    assert "Nothing was imported" in body and "<img src=x" not in body


# --- Secrets ---

SECRET = "tlk_LEAKCHECK_5f0e1d2c3b4a69788796a5b4"


def test_an_api_key_appears_in_no_page_export_log_or_error(admin_client, twelvelabs_fake, caplog):
    caplog.set_level(logging.DEBUG)
    twelvelabs_fake.api_key = SECRET
    source = Source(name="leaky", provider="twelvelabs", base_url=twelvelabs_fake.base_url)
    source.set_api_key(SECRET)
    source.save()
    twelvelabs_fake.add_batch(tl.TIMED_BATCH, tl.timed_lines())
    assert fetch.fetch_batch(source, tl.TIMED_BATCH).outcome == "succeeded"
    batch = Batch.objects.get()
    # A provider that echoes the key in its error, then a sync through the page.
    echo = tl.error(401, "api_key_invalid", f"The API key {SECRET} is not valid.")
    twelvelabs_fake.inject("batch", echo, times=None)
    twelvelabs_fake.inject("list", echo, times=None)
    failed = fetch.fetch_batch(source, tl.TIMED_BATCH)
    assert failed.outcome == "failed" and "refused the API key" in failed.error

    seen = {
        "sync error": failed.error + Batch.objects.get().last_error,
        "run json": json.dumps(failed.as_dict()),
    }
    for url in [
        "/", batch.get_absolute_url(), reverse("batch_add"), f"{reverse('batch_recent')}?source={source.pk}",
        reverse("batch_status", args=[batch.pk]), reverse("admin:reviewer_source_changelist"),
        reverse("admin:reviewer_source_change", args=[source.pk]), reverse("admin:reviewer_syncrun_changelist"),
        reverse("admin:reviewer_batch_change", args=[batch.pk]),
    ]:  # fmt: skip
        response = admin_client.get(url)
        assert response.status_code == 200, url
        seen[url] = response.content.decode()
    for file_format in ("csv", "json"):
        response = admin_client.get(reverse("batch_export", args=[batch.pk, file_format]))
        seen[file_format] = b"".join(response.streaming_content).decode()
    # Saving the source in the admin without a new key keeps the key and shows none of it.
    response = admin_client.post(
        reverse("admin:reviewer_source_change", args=[source.pk]),
        {"name": "leaky", "provider": "twelvelabs", "base_url": source.base_url, "viewer_base_url": "", "api_key": ""},
        follow=True,
    )
    seen["admin after save"] = response.content.decode()
    assert Source.objects.get().get_api_key() == SECRET
    seen["logs"] = caplog.text

    for where, text in seen.items():
        assert SECRET not in text, f"the key leaks in {where}"
        assert SECRET[4:-4] not in text, f"part of the key leaks in {where}"
    assert "a5b4" in seen[reverse("admin:reviewer_source_changelist")]  # the last 4 characters, to tell keys apart


# --- Headers and production settings ---


def test_every_page_sends_the_security_headers(staff_client, batch):
    response = staff_client.get(batch.get_absolute_url())
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'" and "unsafe" not in policy
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_no_template_has_inline_script_handlers_or_styles():
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline <script> in {path.name}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {path.name}"
        assert not re.search(r"\sstyle\s*=", text), f"inline style in {path.name}"


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    env = {
        **os.environ, "DEBUG": "0", "SECRET_KEY": "x" * 20 + "-production-like-secret-key-0123456789abcdef",
        "ALLOWED_HOSTS": "reviewer.example.com", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "BEHIND_TLS_PROXY": "1", "SSL_REDIRECT": "1", "HSTS_SECONDS": "31536000",
        "HSTS_INCLUDE_SUBDOMAINS": "1", "HSTS_PRELOAD": "1", "DJANGO_SETTINGS_MODULE": "reviewer.settings",
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    readme = (ROOT / "README.md").read_text()
    assert "BEHIND_TLS_PROXY=1 SSL_REDIRECT=1 HSTS_SECONDS=31536000 HSTS_INCLUDE_SUBDOMAINS=1 HSTS_PRELOAD=1" in readme


# --- Login throttling ---


def test_repeated_failed_logins_are_paused_for_that_user_and_address(client, staff, viewer, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        assert response.status_code in (200, 429)
    locked = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Another user from the same address is not locked out.
    other = client.post("/accounts/login/", {"username": "victor", "password": "pw-victor"})
    assert other.status_code == 302 and client.session["_auth_user_id"] == str(viewer.pk)


def test_a_success_before_the_limit_resets_the_count(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"}).status_code == 302
    client.logout()
    for _ in range(2):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"}).status_code == 302


def test_event_admin_is_read_only(admin_client, batch):
    event = Event.objects.first()
    response = admin_client.post(reverse("admin:reviewer_event_change", args=[event.pk]), {"approval": "invalid"})
    assert response.status_code == 403
    assert Event.objects.get(pk=event.pk).approval == "approved"


def _login(client, password: str, forwarded: str):
    return client.post("/accounts/login/", {"username": "alice", "password": password},
                       REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)  # fmt: skip


def test_behind_a_proxy_a_lockout_is_per_client_address(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.PROXY_COUNT = 1  # one proxy (10.0.0.1) that appends the client's address
    for _ in range(3):
        _login(client, "wrong", "203.0.113.5")
    assert _login(client, "pw-alice", "203.0.113.5").status_code == 429
    # Another client of the same proxy logs in: the proxy's address is not what was locked.
    assert _login(Client(), "pw-alice", "198.51.100.7").status_code == 302


def test_a_forged_forwarded_for_entry_cannot_lock_out_someone_else(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.PROXY_COUNT = 1
    for _ in range(3):  # the attacker claims to be 198.51.100.7; the proxy appends the real address
        _login(client, "wrong", "198.51.100.7, 203.0.113.66")
    assert _login(Client(), "pw-alice", "198.51.100.7").status_code == 302
    assert _login(Client(), "pw-alice", "203.0.113.66").status_code == 429


def test_without_proxies_the_forwarded_for_header_is_ignored(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.PROXY_COUNT = 0
    for n in range(3):  # a different claimed address each time: still one client, 10.0.0.1
        _login(client, "wrong", f"203.0.113.{n}")
    assert _login(Client(), "pw-alice", "198.51.100.7").status_code == 429

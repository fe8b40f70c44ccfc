"""manage.py add_source: a source from an environment variable's key, with provider defaults."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from reviewer.models import Source

KEY = "tlk_SECRET_0123456789abcd"


def run(*args: str) -> str:
    out = StringIO()
    call_command("add_source", *args, stdout=out)
    return out.getvalue()


def test_it_adds_a_source_with_the_providers_defaults(db, monkeypatch):
    monkeypatch.setenv("TL_KEY", f"  {KEY}\n")  # pasted with whitespace around it
    output = run("fleet", "--provider", "twelvelabs", "--api-key-env", "TL_KEY")
    source = Source.objects.get(name="fleet")
    assert (source.provider, source.base_url, source.viewer_base_url) == (
        "twelvelabs", "https://api.twelvelabs.io/v1.3", "https://playground.twelvelabs.io"
    )  # fmt: skip
    assert source.get_api_key() == KEY
    assert KEY not in source.api_key_encrypted
    assert output == "Added source fleet (TwelveLabs, https://api.twelvelabs.io/v1.3, key ••••abcd)\n"


def test_it_updates_the_source_of_that_name(db, monkeypatch):
    monkeypatch.setenv("NM_KEY", "old-key-0000")
    run("nm", "--provider", "nomadicml", "--api-key-env", "NM_KEY")
    first = Source.objects.get(name="nm")
    monkeypatch.setenv("NM_KEY", "new-key-1111")
    output = run("nm", "--provider", "nomadicml", "--api-key-env", "NM_KEY", "--base-url", "http://127.0.0.1:8123",
                 "--viewer-base-url", "https://nomadic.example.com")  # fmt: skip
    source = Source.objects.get()
    assert source.pk == first.pk
    assert (source.base_url, source.viewer_base_url, source.get_api_key()) == (
        "http://127.0.0.1:8123", "https://nomadic.example.com", "new-key-1111"
    )  # fmt: skip
    assert output.startswith("Updated source nm (NomadicML, http://127.0.0.1:8123, key ••••1111)")


@pytest.mark.parametrize("value", [None, "", "   "])
def test_it_refuses_an_unset_or_empty_variable(db, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("MISSING_KEY", raising=False)
    else:
        monkeypatch.setenv("MISSING_KEY", value)
    with pytest.raises(CommandError, match="The environment variable MISSING_KEY is not set or empty"):
        run("x", "--provider", "twelvelabs", "--api-key-env", "MISSING_KEY")
    assert not Source.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name!", "--base-url", "https://x.example.com"], "Invalid source: name:"),
        (["ok", "--base-url", "not a url"], "Invalid source: base_url: Enter a valid URL."),
    ],
)
def test_it_refuses_an_invalid_source(db, monkeypatch, args, message):
    monkeypatch.setenv("K", KEY)
    with pytest.raises(CommandError, match=message):
        run(*args, "--provider", "twelvelabs", "--api-key-env", "K")
    assert not Source.objects.exists()


@pytest.fixture
def admin_client(client, db):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("root", password="pw-root"))
    return client


@pytest.fixture
def source(db):
    source = Source(name="tl", provider="twelvelabs", base_url="https://api.twelvelabs.io/v1.3")
    source.set_api_key("tlk_original_key_123456")
    source.save()
    return source


def _save(admin_client, source, **changes):
    data = {"name": source.name, "provider": source.provider, "base_url": source.base_url, "viewer_base_url": "",
            "api_key": ""} | changes  # fmt: skip
    return admin_client.post(f"/admin/reviewer/source/{source.pk}/change/", data)


@pytest.mark.parametrize(
    "changes",
    [
        {"base_url": "https://collector.example.net/v1.3"},
        {"base_url": "http://api.twelvelabs.io/v1.3"},
        {"provider": "nomadicml"},
    ],  # fmt: skip
)
def test_moving_a_source_to_another_host_or_provider_needs_the_key_again(admin_client, source, changes):
    response = _save(admin_client, source, **changes)
    assert response.status_code == 200 and "Enter the API key again" in response.content.decode()
    assert Source.objects.get().base_url == "https://api.twelvelabs.io/v1.3"  # nothing saved
    response = _save(admin_client, source, api_key="tlk_new_key_for_new_host", **changes)
    assert response.status_code == 302
    assert Source.objects.get().get_api_key() == "tlk_new_key_for_new_host"


def test_a_new_path_on_the_same_host_keeps_the_key(admin_client, source):
    response = _save(admin_client, source, base_url="https://api.twelvelabs.io/v1.4")
    assert response.status_code == 302
    assert Source.objects.get().get_api_key() == "tlk_original_key_123456"


def test_the_role_groups_the_readme_names_exist_after_migrating(db):
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {"reviewer", "viewer"}


def test_the_readmes_commands_work_from_the_checkout_without_exporting_debug(tmp_path):
    """`.venv/bin/python manage.py ...` on a developer's machine: no SECRET_KEY error."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {
        key: value for key, value in os.environ.items() if key not in ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/dev.sqlite3"
    result = subprocess.run([sys.executable, str(root / "manage.py"), "check"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    uses_checkout_venv = Path(sys.prefix).resolve() == (root / ".venv").resolve()
    if uses_checkout_venv:
        assert result.returncode == 0, result.stderr
    else:  # another interpreter (a system install): still strict
        assert "SECRET_KEY" in result.stderr
    env["SECRET_KEY"] = "x" * 50  # a deployment: DEBUG stays off
    script = "from django.conf import settings; print(settings.DEBUG)"
    strict = subprocess.run([sys.executable, str(root / "manage.py"), "shell", "-c", script], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert strict.stdout.strip().splitlines()[-1] == "False", strict.stderr

"""The production static files: collectstatic with WhiteNoise's manifest storage, as a deployment runs it."""

from __future__ import annotations

from django.core.management import call_command


def test_collectstatic_with_the_production_storage_succeeds(settings, tmp_path):
    # The manifest storage rewrites every url() and sourceMappingURL a file names and
    # refuses a missing one: the vendored hls.js once named a map that is not shipped.
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    assert (tmp_path / "staticfiles.json").exists()
    assert any(tmp_path.glob("vendor/hls.js/hls.light.min.*.js"))

"""``manage.py add_source NAME --provider P --api-key-env VAR``: add or update a provider account."""

from __future__ import annotations

import os
from argparse import ArgumentParser

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reviewer.models import Provider, Source
from reviewer.providers import adapter_for


class Command(BaseCommand):
    help = (
        "Add a provider source, or update the one with this name. The API key is read from an "
        "environment variable, so it never appears in the shell history or the process list."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="a short slug, e.g. fleet-prod")
        parser.add_argument("--provider", required=True, choices=Provider.values)
        parser.add_argument("--base-url", help="API base URL (default: the provider's)")
        parser.add_argument("--viewer-base-url", help="base URL of the provider's web app (default: the provider's)")
        parser.add_argument("--api-key-env", required=True, metavar="VAR", help="environment variable holding the key")

    def handle(self, *args: object, **options: object) -> None:
        variable = options["api_key_env"]
        key = (os.environ.get(variable) or "").strip()
        if not key:
            raise CommandError(f"The environment variable {variable} is not set or empty: it must hold the API key.")
        provider = options["provider"]
        source = Source.objects.filter(name=options["name"]).first() or Source(name=options["name"])
        created = source.pk is None
        source.provider = provider
        adapter = adapter_for(provider)
        source.base_url = options["base_url"] or adapter.default_base_url
        source.viewer_base_url = options["viewer_base_url"] or adapter.default_viewer_base_url
        source.set_api_key(key)
        try:
            source.full_clean()
        except ValidationError as exc:
            reasons = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
            raise CommandError(f"Invalid source: {reasons}") from None
        source.save()
        self.stdout.write(
            f"{'Added' if created else 'Updated'} source {source.name} ({source.get_provider_display()}, "
            f"{source.base_url}, key {source.masked_key})"
        )

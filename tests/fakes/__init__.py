"""Fakes of the two providers, speaking their wire formats (PROVIDERS.md) over real HTTP."""

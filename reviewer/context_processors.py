"""Template context for every page."""

from __future__ import annotations

from functools import cache

from django.http import HttpRequest


def roles(request: HttpRequest) -> dict:
    """``can_review``: whether to show actions (Import, Add batch, decisions). Views enforce it too.

    A callable, which templates call when they use it: a page that does not ask costs no query.
    """

    @cache
    def can_review() -> bool:
        from reviewer.views import can_review as may_review  # views import the models, loaded after settings

        user = getattr(request, "user", None)
        return bool(user and user.is_authenticated and may_review(user))

    return {"can_review": can_review}

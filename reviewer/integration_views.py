"""Pages for the team's pipeline: personal API tokens, webhook endpoints (staff), and the hand-off download."""

from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewer import handoff, webhooks
from reviewer.models import ApiToken, Batch, DeliveryState, Webhook, WebhookDelivery, WebhookEvent


def _staff_only(view):
    """Staff only; anyone else gets 403 (they are logged in: the login middleware saw to that)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can configure webhooks.")
        return view(request, *args, **kwargs)

    return wrapper


# --- API tokens ---------------------------------------------------------------------------------


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “training pipeline”.")


@never_cache  # the page right after creating a token shows the token: never from a cache
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The user's tokens; creating one shows it once, on the answer to the POST."""
    form = TokenForm(request.POST or None)
    new_token = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _, new_token = ApiToken.issue(request.user, form.cleaned_data["name"].strip())
            form = TokenForm()
        else:
            status = 400
    tokens = request.user.api_tokens.order_by("revoked_at", "-created_at")
    context = {"form": form, "tokens": tokens, "new_token": new_token, "api_base": request.build_absolute_uri("/api/")}
    return render(request, "reviewer/api_tokens.html", context, status=status)


@require_POST
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)  # one's own tokens only
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        messages.success(request, f"Revoked “{token.name}”: it no longer works.")
    return redirect("api_tokens")


# --- Webhooks ---------------------------------------------------------------------------------------


class WebhookForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple, help_text="What to send to this URL."
    )

    class Meta:
        model = Webhook
        fields = ["url", "events"]
        labels = {"url": "Receiver URL"}
        help_texts = {"url": "An http(s) address that accepts POSTed JSON."}

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("Use an http:// or https:// address.")
        return url


@_staff_only
@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        hook = form.save(commit=False)
        secret = webhooks.new_secret()
        hook.set_secret(secret)
        hook.created_by = request.user
        hook.save()
        return _show_secret(request, hook, secret, created=True)
    hooks = Webhook.objects.all()
    status = 400 if request.method == "POST" else 200
    return render(request, "reviewer/webhooks.html", {"form": form, "hooks": hooks}, status=status)


@never_cache
@_staff_only
@require_GET
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    hook = get_object_or_404(Webhook, pk=pk)
    deliveries = hook.deliveries.order_by("-created_at", "-id")[:100]
    counts = {state: hook.deliveries.filter(state=state).count() for state in DeliveryState.values}
    return render(request, "reviewer/webhook_detail.html", {"hook": hook, "deliveries": deliveries, "counts": counts})


@_staff_only
@require_POST
def webhook_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """test | rotate | pause | resume | delete | retry (with ``delivery``)."""
    hook = get_object_or_404(Webhook, pk=pk)
    if action == "test":
        webhooks.send_test(hook)
        messages.success(request, "A test event is queued: the worker sends it within seconds (see the log below).")
    elif action == "rotate":
        secret = webhooks.new_secret()
        hook.set_secret(secret)
        hook.save(update_fields=["secret_encrypted"])
        return _show_secret(request, hook, secret, created=False)
    elif action in ("pause", "resume"):
        hook.active = action == "resume"
        hook.save(update_fields=["active"])
        messages.success(request, "Deliveries resumed." if hook.active else "Paused: no new deliveries are queued.")
    elif action == "delete":
        if request.POST.get("confirm") != "1":  # one click must not lose the endpoint and its log
            return render(request, "reviewer/webhook_delete.html", {"hook": hook, "count": hook.deliveries.count()})
        hook.delete()
        messages.success(request, f"Deleted the webhook to {hook.url} and its delivery log.")
        return redirect("webhook_list")
    elif action == "retry":
        number = request.POST.get("delivery", "")
        pk = int(number) if number.isascii() and number.isdigit() and len(number) < 19 else 0
        delivery = get_object_or_404(WebhookDelivery, pk=pk, webhook=hook)
        webhooks.retry_now(delivery)
        messages.success(request, "The delivery is queued again.")
    else:
        raise Http404("No such action.")
    return redirect(hook)


def _show_secret(request: HttpRequest, hook: Webhook, secret: str, *, created: bool) -> HttpResponse:
    response = render(request, "reviewer/webhook_secret.html", {"hook": hook, "secret": secret, "created": created})
    response["Cache-Control"] = "no-store"
    return response


# --- The hand-off download ------------------------------------------------------------------------------


@require_GET
def batch_handoff(request: HttpRequest, pk: int) -> HttpResponse:
    """Approved and rejected events per video as JSON (``?include_provider=1``: the provider's decisions too)."""
    batch = get_object_or_404(Batch, pk=pk)
    people_only = request.GET.get("include_provider", "").lower() not in ("1", "true", "yes", "on")  # as the API
    response = StreamingHttpResponse(handoff.json_chunks(batch, people_only=people_only),
                                     content_type="application/json")  # fmt: skip
    response["Content-Disposition"] = f'attachment; filename="{handoff.file_name(batch)}"'
    return response

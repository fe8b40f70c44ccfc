from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from reviewer import insight_views, integration_views, search_views, views
from reviewer.api import api


def _token_authenticated(api_urls):
    """The API's operations check a token themselves (reviewer/api): the session login does not apply."""
    for pattern in api_urls[0]:
        pattern.callback.login_required = False
    return api_urls


urlpatterns = [
    path("", views.batch_list, name="batch_list"),
    path("batches/<int:pk>/", views.batch_detail, name="batch_detail"),
    re_path(r"^batches/(?P<pk>[0-9]+)/export\.(?P<file_format>csv|json)$", views.batch_export, name="batch_export"),
    path("batches/add/", views.batch_add, name="batch_add"),
    path("batches/add/recent", views.batch_recent, name="batch_recent"),
    path("batches/<int:pk>/sync", views.batch_sync, name="batch_sync"),
    path("batches/<int:pk>/status", views.batch_status, name="batch_status"),
    path("batches/<int:pk>/decisions", views.batch_decisions, name="batch_decisions"),
    path("batches/<int:pk>/decisions/confirm", views.bulk_confirm, name="bulk_confirm"),
    path("batches/<int:pk>/undo", views.batch_undo, name="batch_undo"),
    path("batches/<int:pk>/activity", views.batch_activity, name="batch_activity"),
    path("batches/<int:pk>/review", views.review_mode, name="review_mode"),
    path("events/<int:pk>/decision", views.event_decision, name="event_decision"),
    path("events/<int:pk>/history", views.event_history, name="event_history"),
    path("events/<int:pk>/note", views.event_note, name="event_note"),
    path("events/<int:pk>/media", views.event_media, name="event_media"),
    path("events/<int:pk>/pane", views.event_pane, name="event_pane"),
    path("images/<path:name>", views.stored_image, name="stored_image"),
    path("import/", views.import_results, name="import_results"),
    path("imports/<int:pk>/", views.import_status, name="import_status"),
    re_path(r"^batches/(?P<pk>[0-9]+)/handoff\.json$", integration_views.batch_handoff, name="batch_handoff"),
    path("batches/<int:pk>/insights", insight_views.batch_insights, name="batch_insights"),
    path("batches/<int:pk>/insights.csv", insight_views.insights_csv, name="batch_insights_csv"),
    path("insights/", insight_views.all_insights, name="all_insights"),
    path("search/", search_views.search_page, name="search"),
    path("batches/<int:pk>/samples", insight_views.sample_create, name="sample_create"),
    path("samples/<int:pk>/", insight_views.sample_detail, name="sample_detail"),
    path("batches/<int:pk>/second-reviews", insight_views.second_review_create, name="second_review_create"),
    path("second-reviews/<int:pk>/", insight_views.second_review_results, name="second_review_results"),
    path("second-reviews/<int:pk>/review", insight_views.second_review_next, name="second_review_next"),
    path(
        "second-reviews/<int:pk>/items/<int:item_pk>", insight_views.second_review_decide, name="second_review_decide"
    ),
    path("insights.csv", insight_views.insights_csv, name="all_insights_csv"),
    path("account/tokens/", integration_views.api_tokens, name="api_tokens"),
    path("account/tokens/<int:pk>/revoke", integration_views.revoke_token, name="revoke_token"),
    path("webhooks/", integration_views.webhook_list, name="webhook_list"),
    path("webhooks/<int:pk>/", integration_views.webhook_detail, name="webhook_detail"),
    path("webhooks/<int:pk>/<slug:action>", integration_views.webhook_action, name="webhook_action"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", _token_authenticated(api.urls)),
]

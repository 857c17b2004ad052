from __future__ import annotations

from django.urls import path

from accounts import token_views, views

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/verify/", views.verify_view, name="login-verify"),
    path("logout/", views.logout_view, name="logout"),
    path("account/", views.account_view, name="account"),
    path("account/confirm-password/", views.reauthenticate_view, name="reauthenticate"),
    path("account/second-factor/", views.second_factor_view, name="second-factor"),
    path(
        "account/second-factor/recovery-codes/",
        views.recovery_codes_view,
        name="second-factor-recovery-codes",
    ),
    path(
        "account/second-factor/remove/",
        views.second_factor_remove_view,
        name="second-factor-remove",
    ),
    path("account/password/", views.password_change_view, name="password-change"),
    path("account/tokens/", token_views.tokens_view, name="api-tokens"),
    path(
        "account/tokens/<int:token_id>/revoke/",
        token_views.token_revoke_view,
        name="api-token-revoke",
    ),
]

"""Account → API tokens: personal tokens for the staff API (GitHub's personal access tokens:
shown once with a copy button, listed with last use, revocable)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from accounts.policy import has_second_factor
from accounts.selectors import staff_tokens_for
from accounts.services import DEFAULT_TOKEN_DAYS, MAX_TOKEN_NAME
from accounts.sudo import require_recent_password
from hashsync.errors import DomainError


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=MAX_TOKEN_NAME,
        help_text="What the token is for, so you recognise it in the list (e.g. “import script”).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        most = settings.HASHSYNC_STAFF_TOKEN_MAX_DAYS  # a setting: read per form, not at import
        self.fields["expires_in_days"] = forms.IntegerField(
            label="Expires after (days)",
            min_value=1,
            max_value=most,
            initial=min(DEFAULT_TOKEN_DAYS, most),
            help_text="Every token expires; choose the shortest time that does the job "
            f"(at most {most} days).",
        )


def _page(
    request: HttpRequest, form: TokenForm, *, secret: str | None = None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "tokens": staff_tokens_for(request.user)[:200],
            "secret": secret,
            "has_second_factor": has_second_factor(request.user),
        },
        status=status,
    )


@never_cache
@login_required
@require_recent_password
@require_http_methods(["GET", "POST"])
def tokens_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request, TokenForm())
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            _, secret = services.staff_token_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            # Rendered in the answer to the POST, never stored or redirected: shown once.
            return _page(request, TokenForm(), secret=secret)
    return _page(request, form, status=400)


@never_cache
@login_required
@require_POST
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = services.staff_token_revoke(actor=request.user, token_id=token_id)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked.")
    return redirect("api-tokens")

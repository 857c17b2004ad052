"""Signing in and out, the second step, the second factor and the password."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import django_otp
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts import second_factor
from accounts.forms import (
    ConfirmPasswordForm,
    EnrolForm,
    PasswordChangeForm,
    SignInForm,
    VerifyForm,
)
from accounts.policy import (
    has_second_factor,
    mark_password_checked,
    second_factor_required,
    session_complete,
    session_verified,
)
from accounts.sudo import require_recent_password, safe_next
from audit.services import audit_record
from hashsync.actors import as_staff
from hashsync.errors import Conflict, DomainError


def _after_password(request: HttpRequest, user: Any) -> HttpResponse:
    target = safe_next(request, reverse("front"))
    # Encoded: a ``next`` with a query of its own (``?a=1&b=2``) must arrive whole.
    query = "?" + urlencode({"next": target}) if target != reverse("front") else ""
    if has_second_factor(user):
        return HttpResponseRedirect(reverse("login-verify") + query)
    if second_factor_required(user):
        return HttpResponseRedirect(reverse("second-factor"))
    return HttpResponseRedirect(target)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and session_complete(request.user):
        return HttpResponseRedirect(safe_next(request, reverse("front")))
    form = SignInForm(request, data=request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user = form.get_user()
        login(request, user)
        mark_password_checked(request.session)
        return _after_password(request, user)
    status = 200 if request.method == "GET" or form.is_valid() else 400
    return render(
        request,
        "accounts/login.html",
        {
            "form": form,
            "next": safe_next(request, ""),
            "lockout_limit": settings.AXES_FAILURE_LIMIT,
        },
        status=status,
    )


@sensitive_post_parameters("otp_token")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def verify_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    if session_verified(user) or not has_second_factor(user):
        return HttpResponseRedirect(safe_next(request, reverse("front")))
    form = VerifyForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and form.is_valid():
        outcome = second_factor.second_factor_verify(
            user=user, token=form.cleaned_data["otp_token"]
        )
        if outcome.device is not None:
            django_otp.login(request, outcome.device)
            mark_password_checked(request.session)
            return HttpResponseRedirect(safe_next(request, reverse("front")))
        if outcome.retry_at is not None:
            seconds = max(1, int((outcome.retry_at - timezone.now()).total_seconds()) + 1)
            form.add_error(
                "otp_token",
                f"Too many wrong codes in a row: wait {seconds} second{pluralize(seconds)}, "
                "then enter the code the app shows then.",
            )
            status = 429
        else:
            form.add_error(
                "otp_token",
                "That code does not match. Enter the six digits the app shows now, or a recovery "
                "code.",
            )
            status = 400
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "accounts/verify.html",
        {"form": form, "next": safe_next(request, "")},
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    """GET asks (a link must not sign anyone out); POST signs out."""
    if request.method == "POST":
        logout(request)
        messages.info(request, "You are signed out.")
        return redirect("login")
    if not request.user.is_authenticated:
        return redirect("login")
    return render(request, "accounts/logout.html")


@sensitive_post_parameters("password")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def reauthenticate_view(request: HttpRequest) -> HttpResponse:
    form = ConfirmPasswordForm(request, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        mark_password_checked(request.session)
        return HttpResponseRedirect(safe_next(request, reverse("account")))
    return render(
        request,
        "accounts/reauthenticate.html",
        {
            "form": form,
            "next": safe_next(request, ""),
            "reauth_minutes": settings.HASHSYNC_REAUTH_MINUTES,
        },
        status=400 if request.method == "POST" else 200,
    )


@never_cache
@login_required
@require_http_methods(["GET"])
def account_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "accounts/account.html",
        {
            "roles": sorted(g.name.replace("_", " ") for g in user.groups.all()),
            "totp": second_factor.totp_device(user),
            "recovery_codes_left": second_factor.recovery_codes_left(user),
            "second_factor_required": second_factor_required(user),
        },
    )


def _render_second_factor(
    request: HttpRequest, *, form: EnrolForm | None = None, codes: list[str] | None = None
) -> HttpResponse:
    user = request.user
    context: dict[str, Any] = {
        "totp": second_factor.totp_device(user),
        "recovery_codes_left": second_factor.recovery_codes_left(user),
        "second_factor_required": second_factor_required(user),
        "codes": codes,
    }
    if context["totp"] is None and codes is None:
        pending = second_factor.totp_pending(user)
        context.update(
            pending=pending,
            qr_svg=second_factor.totp_qr_svg(pending),
            secret_text=second_factor.totp_secret_text(pending),
            form=form or EnrolForm(initial={"device_id": pending.pk}),
        )
    status = 400 if form is not None and form.errors else 200
    return render(request, "accounts/second_factor.html", context, status=status)


@sensitive_post_parameters("otp_token")
@never_cache
@login_required
@require_recent_password
@require_http_methods(["GET", "POST"])
def second_factor_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render_second_factor(request)
    form = EnrolForm(request.POST)
    if form.is_valid():
        try:
            codes = second_factor.totp_confirm(
                actor=request.user,
                device_id=form.cleaned_data["device_id"],
                token=form.cleaned_data["otp_token"],
            )
        except Conflict as error:
            # Finished or replaced in another window: the form on this page is stale, so show
            # the page as it is now (PRG), with the reason.
            messages.error(request, error.message)
            return redirect("second-factor")
        except DomainError as error:
            form.add_error("otp_token", error.message)
        else:
            device = second_factor.totp_device(request.user)
            django_otp.login(request, device)
            return _render_second_factor(request, codes=codes)
    return _render_second_factor(request, form=form)


@never_cache
@login_required
@require_recent_password(return_to="second-factor")
@require_POST
def recovery_codes_view(request: HttpRequest) -> HttpResponse:
    try:
        codes = second_factor.recovery_codes_regenerate(actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("second-factor")
    return _render_second_factor(request, codes=codes)


@never_cache
@login_required
@require_recent_password(return_to="second-factor")
@require_POST
def second_factor_remove_view(request: HttpRequest) -> HttpResponse:
    revoked = second_factor.second_factor_remove(actor=request.user)
    removed = "Your second factor is removed."
    if revoked:
        removed += (
            f" Your {revoked} API token{pluralize(revoked)} {pluralize(revoked, 'was,were')} "
            "revoked with it: create new ones once a second factor is set up again."
        )
    if second_factor_required(request.user):
        messages.warning(request, f"{removed} Your role needs one: set up a new one now.")
    else:
        messages.info(request, removed)
    return redirect("second-factor")


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def password_change_view(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user = as_staff(request.user)
        with transaction.atomic():
            user.set_password(form.cleaned_data["new_password1"])
            user.save(update_fields=["password"])
            audit_record(
                actor=user,
                action="staff.password_change",
                object_type="staff_user",
                object_id=user.get_username(),
            )
        update_session_auth_hash(request, user)
        mark_password_checked(request.session)
        messages.success(request, "Your password is changed. Other sessions are signed out.")
        return redirect("account")
    return render(
        request,
        "accounts/password_change.html",
        {"form": form},
        status=400 if request.method == "POST" else 200,
    )

"""Forms of the sign-in pages. Every password is checked through ``authenticate()`` with the
request, so the lockout (django-axes) counts it wherever it is typed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest

from hashsync.actors import as_staff


class SignInForm(AuthenticationForm):
    error_messages = {
        "invalid_login": "The username or password is not right. Both are case-sensitive.",
        "inactive": "This account is disabled. Ask your administrator.",
    }

    def __init__(self, request: HttpRequest | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        self.fields["username"].widget.attrs.update({"autofocus": True, "spellcheck": "false"})
        self.fields["password"].widget.attrs["autocomplete"] = "current-password"


class VerifyForm(forms.Form):
    otp_token = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The six digits your authenticator app shows now, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "text",
                "autofocus": True,
                "spellcheck": "false",
            }
        ),
    )


class EnrolForm(forms.Form):
    device_id = forms.IntegerField(widget=forms.HiddenInput)
    otp_token = forms.CharField(
        label="Code from the app",
        max_length=16,
        help_text="After scanning, the app shows six digits that change every 30 seconds.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )


class _PasswordCheckMixin:
    """Checks ``field`` against the signed-in user's password through ``authenticate()``."""

    request: HttpRequest

    def check_password_field(self, value: str) -> str:
        user = self.request.user
        checked = authenticate(self.request, username=user.get_username(), password=value)
        if checked is None or checked.pk != user.pk:
            if getattr(self.request, "axes_locked_out", False):
                from accounts.lockout import lockout_message

                raise forms.ValidationError(lockout_message(), code="locked")
            raise forms.ValidationError("That is not your password.", code="password_incorrect")
        return value


class ConfirmPasswordForm(_PasswordCheckMixin, forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        return self.check_password_field(self.cleaned_data["password"])


class PasswordChangeForm(_PasswordCheckMixin, forms.Form):
    old_password = forms.CharField(
        label="Current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    new_password1 = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    new_password2 = forms.CharField(
        label="New password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_old_password(self) -> str:
        return self.check_password_field(self.cleaned_data["old_password"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        new1, new2 = cleaned.get("new_password1"), cleaned.get("new_password2")
        if new1 and new2:
            if new1 != new2:
                self.add_error("new_password2", "The two new passwords differ.")
            else:
                try:
                    password_validation.validate_password(new1, as_staff(self.request.user))
                except forms.ValidationError as error:
                    self.add_error("new_password1", error)
        return cleaned

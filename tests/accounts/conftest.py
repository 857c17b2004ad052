from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from django_otp.plugins.otp_totp import models as totp_models

from tests.accounts.helpers import Authenticator


@pytest.fixture
def authenticator(monkeypatch: pytest.MonkeyPatch) -> Authenticator:
    """The person's authenticator app, with the server's TOTP clock held still in the middle
    of a step (the real clock could cross a step boundary between computing a code and the
    server checking it)."""
    app = Authenticator(now=(time.time() // 30) * 30 + 15)
    monkeypatch.setattr(totp_models, "time", SimpleNamespace(time=lambda: app.now))
    return app


@pytest.fixture(autouse=True)
def _lockout_after_three(settings: Any) -> None:
    """Three wrong passwords lock, so tests stay short; the tests read the limit from
    settings rather than counting on it."""
    settings.AXES_FAILURE_LIMIT = 3

"""Signed, expiring cookie values: the pages' session and the OAuth state.

A value is `<payload>.<signature>`, both URL-safe base64: the payload is JSON with an `exp`
(Unix seconds), the signature HMAC-SHA256 of the payload under the key. Nothing in it is
secret (a viewer's name and rights); what matters is that only the server can make one, so a
changed, forged or expired value reads as no value at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable

from core.settings import Settings

SESSION_COOKIE = "hubcost-session"


def signing_key(settings: Settings) -> bytes:
    """UI_SESSION_SECRET, else a key derived from the mode's own secret.

    Derived, not random, so that a restart keeps everyone signed in; changing API_TOKEN (or the
    service's JupyterHub token) then ends every session, as changing UI_SESSION_SECRET does.
    """
    if settings.ui_session_secret is not None:
        secret = settings.ui_session_secret.reveal()
    elif settings.jupyterhub is not None:
        secret = settings.jupyterhub.api_token.reveal()
    elif settings.api_token is not None:
        secret = settings.api_token.reveal()
    else:
        raise ValueError("the open mode has no sessions to sign")
    return hmac.new(secret.encode(), b"hubcost ui session key", hashlib.sha256).digest()


class Signer:
    def __init__(self, key: bytes, *, purpose: str, clock: Callable[[], float] = time.time):
        # One key, one purpose: a state value never passes for a session, nor back.
        self.key = hmac.new(key, purpose.encode(), hashlib.sha256).digest()
        self.clock = clock

    def sign(self, data: dict, *, max_age_s: int, now: float | None = None) -> str:
        issued = self.clock() if now is None else now
        payload = _encode(json.dumps({**data, "exp": int(issued) + max_age_s}).encode())
        return f"{payload}.{_encode(self._mac(payload))}"

    def verify(self, value: str | None) -> dict | None:
        """The data of a value this signer made and that has not expired, else None."""
        if not value or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        try:
            given = _decode(signature)
            data = json.loads(_decode(payload))
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(given, self._mac(payload)):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), int):
            return None
        if data["exp"] <= self.clock():
            return None
        return data

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))

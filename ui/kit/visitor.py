"""Who this session is, for the quotas (`engine.core.quotas`): the visitor id of the browser's
signed cookie (set by the server's front door, `engine.infra.gate`) and the client's address,
read once per session from the websocket's handshake (`st.context`)."""

from __future__ import annotations

import streamlit as st

from engine.core import quotas
from engine.core.quotas import COOKIE, LOCAL, Who

WHO_KEY = "visitor.who"  # session_state: this session's Who


def who() -> Who:
    """This session's visitor (a session without a valid cookie is its address alone)."""
    found = st.session_state.get(WHO_KEY)
    if isinstance(found, Who):
        return found
    try:
        cookie = st.context.cookies.get(COOKIE)
        peer = st.context.ip_address  # None on the server's own machine
        forwarded = st.context.headers.get("X-Forwarded-For")
    except Exception:  # noqa: BLE001  (no request behind this run, as in AppTest)
        cookie = peer = forwarded = None
    found = Who(quotas.visitor_from_cookie(cookie), quotas.client_address(peer, forwarded))
    st.session_state[WHO_KEY] = found
    return found


def on_this_machine() -> bool:
    """Whether the visitor sits at the server's own machine (the operator, in practice)."""
    return who().address == LOCAL


_UPLOADS = quotas.Window(3600.0)  # uploads (images or sentences) per visitor and address, an hour


def take_upload() -> None:
    """Count one upload of this session's visitor; QuotaError (a sentence for the page) when
    they, or their address, have uploaded too often in the last hour."""
    _UPLOADS.take(quotas.per_keys(who(), "UPLOADS_PER_HOUR", "UPLOADS_PER_ADDRESS_HOUR"),
                  "You have uploaded too many files in the last hour")

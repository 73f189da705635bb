"""The pslake dashboard: sign-in, the shared filters, and the router to one page per subject.

Run with ``pslake app``. Reads the published snapshot of the marts (``pslake.snapshot``), never
the warehouse, so it keeps serving while a pipeline run writes. Nothing is read before the user
signs in, and the sign-in is checked again on every rerun (``app.auth.still_signed_in``: removed
from the users file, signed out in another tab, a password session idle too long, single sign-on
expired); every query is limited to the legal entities granted to the user
(``app.state.entity_scope``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import streamlit as st

from app import auth, state
from pslake import snapshot
from pslake.errors import PslakeError

PAGES = Path(__file__).parent / "app_pages"
MAX_FAILURES = 5
LOCKOUT_SECONDS = 30
SESSION_KEY = "auth_session"
NOTICE_KEY = "auth_notice"
LOCKOUT_KEYS = ("auth_failures", "auth_locked_until")


def _identity_provider_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def _identity() -> dict[str, Any] | None:
    """What the identity provider vouched for (``st.user``); None when none is configured."""
    if not _identity_provider_configured():
        return None
    return dict(st.user.to_dict())


def _end_session(reason: str) -> None:
    """Forget the sign-in and everything the session chose (the lockout is kept)."""
    kept = {k: st.session_state[k] for k in LOCKOUT_KEYS if k in st.session_state}
    st.session_state.clear()
    st.session_state.update(kept)
    st.session_state[NOTICE_KEY] = reason


def _single_sign_on(users: dict[str, auth.User]) -> auth.User | None:
    """The user the identity provider signed in, if one is granted; else a sign-in button."""
    identity = _identity() or {}
    if identity.get("is_logged_in") is not True:
        st.button("Sign in with single sign-on", key="auth_sso", on_click=st.login)
        return None
    email = identity.get("email")
    problem = auth.identity_problem(identity, time.time())
    if problem is None and auth.SIGN_OUTS.ended(str(email), float(identity["iat"])):
        problem = auth.SIGNED_OUT  # this browser's cookie is from before the sign-out
    if problem is not None:
        if problem != st.session_state.get(NOTICE_KEY):  # not said already, just above
            st.warning(problem)
        st.button("Sign in again with single sign-on", key="auth_sso", on_click=st.login)
        return None
    user = auth.user_for_identity(users, str(email) if email else None)
    if user is None:
        st.error(f"You are signed in as {email or 'someone without an email'}, but no legal "
                 "entity is granted to you: ask an administrator to run `pslake app user add "
                 "EMAIL --sso --entity ...`.")
        st.button("Sign out", key="auth_sso_sign_out", on_click=st.logout)
        return None
    st.session_state[SESSION_KEY] = auth.SignedIn(user, at=float(identity["iat"]))
    st.session_state.pop(NOTICE_KEY, None)
    return user


def _sign_in() -> auth.User | None:
    try:
        users = auth.load_users()
        idle_s = auth.idle_limit_s()
    except PslakeError as exc:
        st.title("pslake")
        st.error(str(exc))
        return None
    session: auth.SignedIn | None = st.session_state.get(SESSION_KEY)
    if session is not None:
        identity = _identity() if session.user.sso else None
        now = time.time()
        user, reason = auth.still_signed_in(session, users, identity, now, idle_s=idle_s)
        if user is not None:
            st.session_state[SESSION_KEY] = dataclasses.replace(session, active_at=now)
            return user
        _end_session(reason)
    st.title("pslake")
    notice = st.session_state.get(NOTICE_KEY)
    if notice:
        st.warning(notice)
    if not users:
        st.error(f"No dashboard users are configured ({auth.users_file()}). Add one with "
                 "`pslake app user add NAME --entity \"*\"`, or run `make demo`.")
        return None
    if _identity_provider_configured():
        user = _single_sign_on(users)
        if user is not None:
            return user
    locked_until = st.session_state.get("auth_locked_until", 0.0)
    with st.form("auth_form"):
        username = st.text_input("User name", key="auth_username")
        password = st.text_input("Password", type="password", key="auth_password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return None
    if time.time() < locked_until:
        st.error(f"Too many failed sign-ins: wait {int(locked_until - time.time()) + 1} s.")
        return None
    user = auth.authenticate(users, username, password)
    if user is None:
        failures = st.session_state.get("auth_failures", 0) + 1
        st.session_state["auth_failures"] = failures
        if failures >= MAX_FAILURES:
            st.session_state["auth_locked_until"] = time.time() + LOCKOUT_SECONDS
            st.session_state["auth_failures"] = 0
        st.error("Unknown user name or wrong password.")
        return None
    st.session_state[SESSION_KEY] = auth.SignedIn(user, at=time.time())
    st.session_state.pop("auth_password", None)
    st.session_state.pop(NOTICE_KEY, None)
    st.rerun()
    return user


def _filters(user: auth.User, current: snapshot.Snapshot) -> state.Context | None:
    path = str(current.path)
    entities = state.query_on(path, "legal_entities")
    pairs = list(zip(entities["legal_entity_id"], entities["legal_entity_name"], strict=True))
    granted = auth.granted_entity_ids(user, pairs)
    if not granted:
        st.warning("Your account is not granted any legal entity of this warehouse: ask an "
                   "administrator to add one to your `entities` in the users file.")
        return None
    names = dict((entity_id, name) for entity_id, name in pairs)
    months = state.query_on(path, "months")
    if not months:
        st.info("The warehouse has no KPI months yet: run `pslake ingest` then "
                "`pslake transform`.")
        return None
    with st.sidebar:
        st.caption(f"Signed in as **{user.display_name}**")
        month = st.selectbox("Period (month)", months, key="filter_month",
                             format_func=lambda m: m.strftime("%B %Y"))
        picked = st.multiselect("Legal entity", granted, default=granted, key="filter_entities",
                                format_func=lambda e: names.get(e, e))
        practice_names = st.multiselect("Practice", state.query_on(path, "practices"),
                                        key="filter_practices", placeholder="All practices")
        currency = st.radio("Money in", [state.REPORTING, state.ENTITY], key="filter_currency",
                            horizontal=True)
        if st.button("Sign out", key="auth_sign_out"):
            auth.SIGN_OUTS.sign_out(user.username, time.time())  # every tab of this user
            st.session_state.clear()
            if user.sso:
                st.logout()
            st.rerun()
    chosen, every_entity = state.entity_scope(picked, granted, user.sees_every_entity)
    return state.Context(
        user=user, snapshot_path=path, published_at=current.published_at, month=month,
        latest_month=max(months), entity_ids=chosen, every_entity=every_entity,
        practices=list(practice_names), currency=currency,
        reporting_currency=state.query_on(path, "reporting_currency"))


def main() -> None:
    """Sign in, open the snapshot, draw the filters, run the chosen page."""
    st.set_page_config(page_title="pslake", layout="wide")
    user = _sign_in()
    if user is None:
        return
    try:
        current = snapshot.current()
    except PslakeError as exc:
        st.error(str(exc))
        return
    if current is None:
        st.error("The warehouse has not been built yet, so there is nothing to show. Run "
                 "`pslake ingest` and `pslake transform` (or `make demo`); `pslake transform` "
                 "publishes the snapshot this dashboard reads.")
        return
    ctx = _filters(user, current)
    if ctx is None:
        return
    st.session_state[state.CONTEXT_KEY] = ctx
    pages = [
        st.Page(PAGES / "overview.py", title="Overview", default=True),
        st.Page(PAGES / "utilization.py", title="Utilization"),
        st.Page(PAGES / "margin.py", title="Margin"),
        st.Page(PAGES / "wip.py", title="WIP and unbilled"),
        st.Page(PAGES / "reconciliation.py", title="Reconciliation"),
        st.Page(PAGES / "reverse_sync.py", title="Reverse sync"),
        st.Page(PAGES / "integration_health.py", title="Integration health"),
    ]
    page = st.navigation(pages, position="top")
    st.caption(f"Data as of the snapshot published {current.published_at:%Y-%m-%d %H:%M} UTC")
    page.run()


main()

"""The battery's test 25, auth_required_and_expiry (shared/RELIABILITY.md).

Every page of the dashboard is opened (AppTest) by sessions that must see no data:

* no identity at all, with and without single sign-on configured (and with URL parameters
  naming a user or an entity);
* an OIDC identity whose ID token expired (``exp`` in the past), one without ``exp``, and one
  that expires while the session is open: Streamlit keeps the token's claims in a cookie for 30
  days, so the app checks ``exp`` itself (``app.auth.identity_problem``) on every rerun;
* identities without entitlements: signed in through the provider but not in the users file,
  and a password user whose grants match no legal entity;
* sessions that were signed in and lost it: signed out in another tab (password and single
  sign-on), removed from the users file, password reset, a password session left unused past
  the idle limit.

Each must show no table, tile, chart, download, filter or entity name, say why, and offer the
sign-in again (the no-grant user, who is signed in, is told to ask for a grant). Where a session
had data before, a control checks that it did, so the check could fail. Figures: pages checked,
unauthorized attempts (injected), attempts refused (survived) and ``unauthorized_renders`` (0).
The fast scenarios run in ``make test``; the random interleavings of two tabs (a Hypothesis
state machine over sign-in, sign-out, revocation and expiry) are also ``soak``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from streamlit.testing.v1 import AppTest

from app import auth
from app.auth import save_user
from tests.app.conftest import (
    ENTRYPOINT,
    UK,
    USERS,
    Dashboard,
    data_shown,
    elements,
    identity,
    signed_in,
    sso_app,
)
from tests.reliability import record

pytestmark = pytest.mark.integration

TEST = "auth_required_and_expiry"
PAGES = ["overview", "utilization", "margin", "wip", "reconciliation", "reverse_sync",
         "integration_health"]
SSO_EMAIL = "uk.lead@northwind.example"
STRANGER = "someone@elsewhere.example"
EXTRA_USERS = {  # name: (password or None for single sign-on, entities)
    "nobody": ("nobody-password-3", ["Northwind Advisory FR"]),  # a grant matching no entity
    "temp": ("temp-password-4", [UK]),                           # removed during a session
    SSO_EMAIL: (None, [UK]),
}


@dataclass
class Tally:
    """Unauthorized attempts, and what they showed."""

    pages: int = 0
    refused: int = 0
    renders: list[str] = field(default_factory=list)
    by_case: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def users(app_env: Dashboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A users file of this test's own (it is changed mid-session): the dashboard's users and
    ``EXTRA_USERS``."""
    path = tmp_path / "users.toml"
    path.write_text(app_env.users.read_text())
    for name, (password, entities) in EXTRA_USERS.items():
        save_user(path, name, password, entities)
    monkeypatch.setenv("PSLAKE_APP_USERS", str(path))
    return path


@pytest.fixture
def names(app_env: Dashboard) -> list[str]:
    """Every legal entity's name: none may appear on a refused page."""
    return [n for n, in app_env.query("select legal_entity_name "
                                      "from canonical.dim_legal_entities")]


def _messages(at: AppTest) -> str:
    said = [str(e.value) for e in [*at.warning, *at.error, *at.info]]
    assert len(said) == len(set(said)), f"a message shown twice: {said}"
    return "\n".join(said)


def _sign_in_offered(at: AppTest) -> bool:
    keys = {getattr(n, "key", None) for n in elements(at)}
    return "auth_username" in keys or "auth_sso" in keys


def _attempt(at: AppTest, page: str, names: list[str], tally: Tally, case: str, says: str,
             sign_in: bool = True) -> None:
    """Open ``page`` in session ``at``, which must see no data, and count the attempt."""
    at.switch_page(f"app_pages/{page}.py").run()
    shown = data_shown(at, names)
    tally.pages += 1
    tally.by_case[case] = tally.by_case.get(case, 0) + 1
    if shown:
        tally.renders.append(f"{case} {page}: {shown[:5]}")
    assert not at.exception, (case, page, [e.message for e in at.exception])
    assert not shown, (case, page, shown)
    assert says in _messages(at), (case, page, _messages(at))
    if sign_in:
        assert _sign_in_offered(at), (case, page)
    tally.refused += 1


def _sees_data(at: AppTest, names: list[str]) -> bool:
    """The control: the session shows data now (so a refusal later is the check's doing)."""
    return not at.exception and bool(at.metric) and bool(data_shown(at, names))


def _anonymous(params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ENTRYPOINT), default_timeout=60)
    at.query_params.update(params or {})
    return at


def _sso(claims: dict[str, object]) -> AppTest:
    return sso_app(claims)


def _sso_signed_in(names: list[str], claims: dict[str, object] | None = None) -> AppTest:
    at = _sso(claims or identity(SSO_EMAIL)).run()
    assert _sees_data(at, names), "the single sign-on user should see the UK's data"
    return at


def _password_signed_in(names: list[str], user: str) -> AppTest:
    password = EXTRA_USERS[user][0] if user in EXTRA_USERS else USERS[user][0]
    at = signed_in(user, password)
    assert _sees_data(at, names), f"{user} should see the UK's data"
    return at


def _remove_user(users: Path, name: str) -> None:
    """Delete a user's entry from the users file (its blank-line separated block)."""
    blocks = users.read_text().split("\n\n")
    users.write_text("\n\n".join(b for b in blocks
                                  if not b.lstrip().startswith(f'[users."{name}"]')))


def _sign_out(at: AppTest) -> None:
    next(b for b in at.button if b.key == "auth_sign_out").click().run()


# Each case: (id, how to make the session, the words it must be told, sign-in offered).
Case = Callable[[list[str], Path], AppTest]


def _no_identity(names: list[str], users: Path) -> AppTest:
    return _anonymous()


def _no_identity_with_parameters(names: list[str], users: Path) -> AppTest:
    return _anonymous({"user": "ceo", "entity": UK, "legal_entity": "*"})


def _no_identity_sso(names: list[str], users: Path) -> AppTest:
    return _sso({"is_logged_in": False})


def _expired(names: list[str], users: Path) -> AppTest:
    return _sso(identity(SSO_EMAIL, issued=time.time() - 3600, lifetime=300))


def _no_exp(names: list[str], users: Path) -> AppTest:
    claims = identity(SSO_EMAIL)
    del claims["exp"]
    return _sso(claims)


def _expires_during_session(names: list[str], users: Path) -> AppTest:
    at = _sso_signed_in(names)
    at.user = {**at.user, "exp": int(time.time()) - 1}  # the same cookie, later
    return at


def _not_entitled_sso(names: list[str], users: Path) -> AppTest:
    return _sso(identity(STRANGER))


def _not_entitled_password(names: list[str], users: Path) -> AppTest:
    return signed_in("nobody", EXTRA_USERS["nobody"][0])


def _signed_out_in_another_tab(names: list[str], users: Path) -> AppTest:
    this, other = (_password_signed_in(names, "uk_lead") for _ in range(2))
    _sign_out(other)
    assert _sign_in_offered(other) and not data_shown(other, names)
    return this


def _sso_signed_out_in_another_tab(names: list[str], users: Path) -> AppTest:
    claims = identity(SSO_EMAIL)
    this, other = _sso_signed_in(names, claims), _sso_signed_in(names, copy.deepcopy(claims))
    _sign_out(other)  # st.logout(): that tab's st.user is cleared, this tab's is not
    assert other.user.get("is_logged_in") is False and this.user["is_logged_in"] is True
    return this


def _removed_from_users_file(names: list[str], users: Path) -> AppTest:
    at = _password_signed_in(names, "temp")
    _remove_user(users, "temp")
    return at


def _password_reset(names: list[str], users: Path) -> AppTest:
    save_user(users, "temp", EXTRA_USERS["temp"][0], [UK])  # back, if an earlier case removed
    at = _password_signed_in(names, "temp")
    save_user(users, "temp", "a-new-password-5", [UK])
    return at


SESSION_KEY = "auth_session"  # where app/streamlit_app.py keeps a session's sign-in


def _idle_past_the_limit(names: list[str], users: Path) -> AppTest:
    at = _password_signed_in(names, "uk_lead")
    limit = auth.idle_limit_s()  # the default, 60 minutes
    assert limit is not None
    session = at.session_state[SESSION_KEY]  # last used a second more than the limit ago
    at.session_state[SESSION_KEY] = dataclasses.replace(session,
                                                        active_at=time.time() - limit - 1)
    return at


CASES: list[tuple[str, Case, str, bool]] = [
    ("no-identity", _no_identity, "", True),
    ("no-identity-url-parameters", _no_identity_with_parameters, "", True),
    ("no-identity-sso", _no_identity_sso, "", True),
    ("expired-id-token", _expired, "Your single sign-on expired at", True),
    ("id-token-without-exp", _no_exp, "(the ID token's `iat` and `exp`)", True),
    ("expires-during-session", _expires_during_session, "Your single sign-on expired at",
     True),
    ("signed-in-not-entitled-sso", _not_entitled_sso, "no legal entity is granted to you",
     False),
    ("signed-in-not-entitled-password", _not_entitled_password,
     "not granted any legal entity", False),
    ("signed-out-in-another-tab", _signed_out_in_another_tab, "You signed out", True),
    ("sso-signed-out-in-another-tab", _sso_signed_out_in_another_tab, "You signed out", True),
    ("removed-from-users-file", _removed_from_users_file, "no longer among", True),
    ("password-reset", _password_reset, "password or sign-in method was changed", True),
    ("idle-past-the-limit", _idle_past_the_limit, "You were away for more than 60 minutes",
     True),
]


@pytest.fixture
def tally() -> Iterator[Tally]:
    """One record for all the cases of the run."""
    found = Tally()
    yield found
    record(TEST, injected=found.pages, survived=found.refused, pages_checked=found.pages,
           unauthorized_renders=len(found.renders), leaked=len(found.renders),
           cases=len(found.by_case), attempts_by_case=found.by_case)


def test_no_page_shows_data_without_a_current_entitled_sign_in(
        users: Path, names: list[str], tally: Tally) -> None:
    for case, make, says, sign_in in CASES:
        at = make(names, users)
        for page in PAGES:
            _attempt(at, page, names, tally, case, says, sign_in)
    assert tally.renders == []
    assert tally.refused == tally.pages == len(CASES) * len(PAGES)


def test_an_expired_sign_in_is_offered_a_fresh_one_and_that_one_works(
        users: Path, names: list[str]) -> None:
    at = _expired(names, users).run()
    assert [b.label for b in at.button if b.key == "auth_sso"] \
        == ["Sign in again with single sign-on"]
    at.user = identity(SSO_EMAIL)  # what the provider returns after st.login()
    at.run()
    assert _sees_data(at, names)


def test_a_password_session_in_use_stays_and_one_left_idle_ends_at_the_configured_limit(
        users: Path, names: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    minutes = 0.1
    monkeypatch.setenv(auth.IDLE_ENV, str(minutes))
    at = _password_signed_in(names, "uk_lead")
    used = at.session_state[SESSION_KEY].active_at
    at.run()  # in use: each rerun counts as use
    assert _sees_data(at, names)
    assert at.session_state[SESSION_KEY].active_at > used
    time.sleep(minutes * 60 + 0.5)
    at.run()
    assert not data_shown(at, names) and _sign_in_offered(at)
    assert f"You were away for more than {minutes:g} minutes" in _messages(at)


# ---------- random interleavings of two tabs (Hypothesis state machine) ----------

class TwoTabs(RuleBasedStateMachine):
    """Two tabs of one user, signing in and out, while the user's entry and token change.

    The model says whether each tab's sign-in is still good; the invariant: a tab shows data
    exactly when it is signed in by the model, and never after the sign-in went bad.
    """

    names: list[str]
    users: Path
    tally: Tally

    def __init__(self) -> None:
        super().__init__()
        self.tabs: list[AppTest | None] = [None, None]
        self.signed: list[bool] = [False, False]
        self.sso: list[bool] = [False, False]
        self.user_present = True
        self.step = 0
        self.sso_signed_out = 0.0

    @initialize()
    def fresh_user(self) -> None:
        save_user(self.users, "temp", "temp-password-4", [UK])

    @rule(tab=st.sampled_from([0, 1]), sso=st.booleans())
    def sign_in(self, tab: int, sso: bool) -> None:
        if sso:
            # the provider's token is issued after any earlier sign-out; iat is whole seconds
            wait = math.floor(self.sso_signed_out) + 1 - time.time()
            if wait > 0:
                time.sleep(wait)
            at = _sso(identity(SSO_EMAIL)).run()
        else:
            at = signed_in("temp", "temp-password-4")
        self.tabs[tab], self.sso[tab] = at, sso
        present = True if sso else self.user_present
        self.signed[tab] = present
        time.sleep(0.002)  # a sign-out and a sign-in are never in the same instant

    @precondition(lambda self: any(self.signed))
    @rule(tab=st.sampled_from([0, 1]))
    def sign_out(self, tab: int) -> None:
        at = self.tabs[tab]
        if at is None or not self.signed[tab]:
            return
        _sign_out(at)
        user = self.sso[tab]
        if user:
            self.sso_signed_out = time.time()
        for index in range(2):  # every session of that user ends
            if self.sso[index] == user:
                self.signed[index] = False
        time.sleep(0.002)

    @rule()
    def remove_password_user(self) -> None:
        _remove_user(self.users, "temp")
        self.user_present = False
        self.signed = [s and self.sso[i] for i, s in enumerate(self.signed)]

    @rule()
    def expire_tokens(self) -> None:
        for index, at in enumerate(self.tabs):
            if at is not None and self.sso[index] and at.user.get("is_logged_in"):
                at.user = {**at.user, "exp": int(time.time()) - 1}
                self.signed[index] = False

    @invariant()
    def each_tab_shows_data_only_while_signed_in(self) -> None:
        """After every step, each open tab reruns (the next page in turn) and is checked."""
        self.step += 1
        for tab, at in enumerate(self.tabs):
            if at is None:
                continue
            page = PAGES[(self.step + tab) % len(PAGES)]
            at.switch_page(f"app_pages/{page}.py").run()
            assert not at.exception, [e.message for e in at.exception]
            shown = data_shown(at, self.names)
            if not self.signed[tab]:
                self.tally.pages += 1
                if shown:
                    self.tally.renders.append(f"tab {tab} {page}: {shown[:5]}")
                else:
                    self.tally.refused += 1
                self.tally.by_case["interleaved"] = self.tally.by_case.get("interleaved", 0) + 1
            assert bool(shown) == self.signed[tab], (tab, page, self.signed, shown[:5])


def _interleavings(users: Path, names: list[str], tally: Tally, examples: int,
                   steps: int) -> None:
    TwoTabs.users, TwoTabs.names, TwoTabs.tally = users, names, tally
    run_state_machine_as_test(TwoTabs, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
        derandomize=True, suppress_health_check=[HealthCheck.too_slow]))


def test_two_tabs_signing_in_and_out_never_show_data_after_the_sign_in_went_bad(
        users: Path, names: list[str], tally: Tally) -> None:
    _interleavings(users, names, tally, examples=6, steps=10)
    assert tally.renders == []


@pytest.mark.soak
def test_many_interleavings_of_two_tabs_never_show_data_after_the_sign_in_went_bad(
        users: Path, names: list[str], tally: Tally) -> None:
    _interleavings(users, names, tally, examples=30, steps=15)
    assert tally.renders == []

"""Users and grants: hashed passwords, the users file, which entities a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import auth
from pslake.errors import PslakeError

pytestmark = pytest.mark.unit

ENTITIES = [("id-us", "Northwind Advisory US"), ("id-uk", "Northwind Advisory UK")]


def test_a_password_is_stored_only_as_a_salted_hash_that_verifies() -> None:
    first, second = auth.hash_password("s3cret"), auth.hash_password("s3cret")
    assert "s3cret" not in first
    assert first != second  # salted
    assert auth.verify_password("s3cret", first)
    assert not auth.verify_password("s3creT", first)
    assert not auth.verify_password("s3cret", "not-a-hash")


def test_saved_users_load_back_with_their_grants_and_others_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    auth.save_user(path, "ceo", "pw-1", ["*"], 'The "CEO"')
    auth.save_user(path, "uk", "pw-2", ["Northwind Advisory UK"])
    users = auth.load_users(path)
    assert set(users) == {"ceo", "uk"}
    assert users["ceo"].display_name == 'The "CEO"'
    assert auth.authenticate(users, "uk", "pw-2") == users["uk"]
    assert auth.authenticate(users, "uk", "pw-1") is None
    assert auth.authenticate(users, "nobody", "pw-1") is None
    assert "pw-" not in path.read_text()
    assert path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("entities", "expected"),
    [
        (["*"], ["id-us", "id-uk"]),                    # every entity
        (["Northwind Advisory UK"], ["id-uk"]),         # by name
        (["northwind advisory uk"], ["id-uk"]),         # names ignore case
        (["id-us"], ["id-us"]),                         # by canonical id
        (["Northwind Advisory FR"], []),                # an entity the warehouse lacks
    ],
    ids=["star", "name", "name-case", "id", "unknown"],
)
def test_a_user_is_granted_exactly_the_entities_named(entities: list[str],
                                                      expected: list[str]) -> None:
    user = auth.User("u", "u", auth.hash_password("x"), tuple(entities))
    assert auth.granted_entity_ids(user, ENTITIES) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[users.a]\nentities = ['*']\n", "has no password_hash"),
        ("[users.a]\npassword_hash = 'x'\n", "needs `entities`"),
        ("[users.a\n", "not valid TOML"),
    ],
    ids=["no-hash", "no-entities", "bad-toml"],
)
def test_a_bad_users_file_is_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "users.toml"
    path.write_text(text)
    with pytest.raises(PslakeError, match=message):
        auth.load_users(path)


def test_a_user_name_that_would_break_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="user name"):
        auth.save_user(tmp_path / "users.toml", 'a"b', "pw", ["*"])


def test_a_single_sign_on_user_has_no_password_and_is_found_by_email(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    auth.save_user(path, "Bob@Firm.example", None, ["Northwind Advisory UK"])
    auth.save_user(path, "carol", "pw-3", ["*"])
    users = auth.load_users(path)
    assert users["Bob@Firm.example"].sso and not users["Bob@Firm.example"].password_hash
    assert auth.user_for_identity(users, "bob@firm.example") == users["Bob@Firm.example"]
    assert auth.user_for_identity(users, "carol") is None  # a password user is not an identity
    assert auth.user_for_identity(users, None) is None
    assert auth.authenticate(users, "Bob@Firm.example", "") is None  # no password sign-in


NOW = 1_800_000_000.0
SSO_USER = auth.User("bob@firm.example", "Bob", "", ("*",), sso=True)
PASSWORD_USER = auth.User("carol", "Carol", auth.hash_password("pw"), ("*",))


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {"is_logged_in": True, "email": "Bob@Firm.example",
                                 "iat": NOW - 60, "exp": NOW + 240}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("claims", "refused"),
    [
        (_claims(), None),                                    # issued a minute ago, 4 left
        (_claims(exp=NOW - 1), "expired"),                    # expired a second ago
        (_claims(exp=NOW), "expired"),                        # expires now: already refused
        (_claims(exp=None), "`iat` and `exp`"),               # no exp at all
        (_claims(exp=str(NOW + 240)), "`iat` and `exp`"),     # exp not a number
        (_claims(exp=True), "`iat` and `exp`"),               # a boolean is not a time
        (_claims(exp=float("inf")), "`iat` and `exp`"),       # nor is infinity
        (_claims(iat=None), "`iat` and `exp`"),               # no iat
        (_claims(is_logged_in=False), "not signed in"),       # signed out
        (_claims(is_logged_in="true"), "not signed in"),      # only True is signed in
    ],
    ids=["valid", "expired", "expires-now", "no-exp", "exp-text", "exp-bool", "exp-inf",
         "no-iat", "logged-out", "logged-in-text"],
)
def test_an_identity_is_refused_unless_its_token_is_current(
        claims: dict[str, object], refused: str | None) -> None:
    problem = auth.identity_problem(claims, NOW)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and refused in problem


def _still(session: auth.SignedIn, users: dict[str, auth.User],
           claims: dict[str, object] | None = None,
           sign_outs: auth.SignOuts | None = None) -> tuple[auth.User | None, str]:
    return auth.still_signed_in(session, users, claims, NOW, sign_outs or auth.SignOuts())


def test_a_session_keeps_its_user_and_takes_up_changed_grants() -> None:
    narrowed = auth.User("carol", "Carol", PASSWORD_USER.password_hash, ("Northwind UK",))
    assert _still(auth.SignedIn(PASSWORD_USER, NOW - 5), {"carol": PASSWORD_USER}) \
        == (PASSWORD_USER, "")
    assert _still(auth.SignedIn(PASSWORD_USER, NOW - 5), {"carol": narrowed}) == (narrowed, "")
    assert _still(auth.SignedIn(SSO_USER, NOW - 60), {SSO_USER.username: SSO_USER},
                  _claims()) == (SSO_USER, "")


@pytest.mark.parametrize(
    ("session", "users", "claims", "reason"),
    [
        # the user was removed from the users file
        (auth.SignedIn(PASSWORD_USER, NOW - 5), {}, None, "no longer among"),
        # the password was reset
        (auth.SignedIn(PASSWORD_USER, NOW - 5),
         {"carol": auth.User("carol", "Carol", auth.hash_password("new"), ("*",))}, None,
         "password or sign-in method was changed"),
        # the user became a single-sign-on user
        (auth.SignedIn(PASSWORD_USER, NOW - 5),
         {"carol": auth.User("carol", "Carol", "", ("*",), sso=True)}, None,
         "password or sign-in method was changed"),
        # the provider's token expired during the session
        (auth.SignedIn(SSO_USER, NOW - 60), {SSO_USER.username: SSO_USER},
         _claims(exp=NOW - 1), "expired"),
        # single sign-on was turned off
        (auth.SignedIn(SSO_USER, NOW - 60), {SSO_USER.username: SSO_USER}, None,
         "no longer configured"),
        # the provider now vouches for someone else
        (auth.SignedIn(SSO_USER, NOW - 60), {SSO_USER.username: SSO_USER},
         _claims(email="eve@firm.example"), "someone else"),
        # signed out through the provider
        (auth.SignedIn(SSO_USER, NOW - 60), {SSO_USER.username: SSO_USER},
         _claims(is_logged_in=False), "not signed in"),
    ],
    ids=["removed", "password-reset", "became-sso", "token-expired", "sso-off", "other-email",
         "provider-logout"],
)
def test_a_session_ends_when_its_sign_in_is_no_longer_good(
        session: auth.SignedIn, users: dict[str, auth.User], claims: dict[str, object] | None,
        reason: str) -> None:
    user, why = _still(session, users, claims)
    assert user is None and reason in why


def test_signing_out_ends_every_earlier_session_of_that_user_only() -> None:
    sign_outs = auth.SignOuts()
    users = {"carol": PASSWORD_USER, SSO_USER.username: SSO_USER}
    sign_outs.sign_out("CAROL", NOW - 10)  # user names are matched ignoring case
    sign_outs.sign_out("carol", NOW - 20)  # an older sign-out does not move it back
    assert _still(auth.SignedIn(PASSWORD_USER, NOW - 30), users, sign_outs=sign_outs) \
        == (None, auth.SIGNED_OUT)
    assert _still(auth.SignedIn(PASSWORD_USER, NOW - 10), users, sign_outs=sign_outs) \
        == (None, auth.SIGNED_OUT)  # signed in the same instant: ended too
    assert _still(auth.SignedIn(PASSWORD_USER, NOW - 9), users, sign_outs=sign_outs) \
        == (PASSWORD_USER, "")  # signed in again afterwards
    assert _still(auth.SignedIn(SSO_USER, NOW - 60), users, _claims(),
                  sign_outs=sign_outs) == (SSO_USER, "")  # another user is not affected


def test_a_password_session_unused_past_the_idle_limit_ends_and_use_keeps_it() -> None:
    users = {"carol": PASSWORD_USER, SSO_USER.username: SSO_USER}
    hour = 3600.0

    def still(session: auth.SignedIn, claims: dict[str, object] | None = None
              ) -> tuple[auth.User | None, str]:
        return auth.still_signed_in(session, users, claims, NOW, auth.SignOuts(), idle_s=hour)

    user, why = still(auth.SignedIn(PASSWORD_USER, NOW - hour - 1))  # never used since
    assert user is None and "away for more than 60 minutes" in why
    assert still(auth.SignedIn(PASSWORD_USER, NOW - hour)) == (PASSWORD_USER, "")  # at the limit
    # signed in long ago, used a minute ago: the limit counts from the last use
    assert still(auth.SignedIn(PASSWORD_USER, NOW - 5 * hour, active_at=NOW - 60)) \
        == (PASSWORD_USER, "")
    user, why = still(auth.SignedIn(PASSWORD_USER, NOW - 5 * hour, active_at=NOW - hour - 1))
    assert user is None and "away" in why
    # single sign-on: the provider's token lifetime rules instead
    assert still(auth.SignedIn(SSO_USER, NOW - 5 * hour, active_at=NOW - 2 * hour),
                 _claims()) == (SSO_USER, "")
    # no limit
    assert auth.still_signed_in(auth.SignedIn(PASSWORD_USER, NOW - 50 * hour), users, None, NOW,
                                auth.SignOuts(), idle_s=None) == (PASSWORD_USER, "")


@pytest.mark.parametrize(("value", "expected"), [
    (None, 3600.0), ("", 3600.0), ("15", 900.0), (" 0.5 ", 30.0), ("0", None)])
def test_the_idle_limit_comes_from_the_environment_in_minutes(
        monkeypatch: pytest.MonkeyPatch, value: str | None, expected: float | None) -> None:
    if value is None:
        monkeypatch.delenv(auth.IDLE_ENV, raising=False)
    else:
        monkeypatch.setenv(auth.IDLE_ENV, value)
    assert auth.idle_limit_s() == expected


@pytest.mark.parametrize("value", ["soon", "-5", "nan", "inf"])
def test_an_idle_limit_that_is_not_minutes_is_refused_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(auth.IDLE_ENV, value)
    with pytest.raises(PslakeError, match=f"PSLAKE_APP_IDLE_MINUTES must be a number of minutes"
                                          f".*not '{value}'"):
        auth.idle_limit_s()


@pytest.mark.parametrize(
    ("picked", "granted", "sees_every_entity", "expected"),
    [
        (["id-uk"], ["id-uk"], False, (["id-uk"], False)),            # what was offered
        ([], ["id-us", "id-uk"], True, (["id-us", "id-uk"], True)),   # none picked: all granted
        (["id-uk", "id-us"], ["id-us", "id-uk"], True, (["id-us", "id-uk"], True)),
        (["id-uk"], ["id-us", "id-uk"], True, (["id-uk"], False)),    # a part: no firm totals
        (["id-us"], ["id-uk"], False, (["id-uk"], False)),            # another entity: dropped
        (["all", "x' or 1=1 --", None, 7], ["id-uk"], False, (["id-uk"], False)),  # junk
        (["id-us", "id-uk"], ["id-us", "id-uk"], False, (["id-us", "id-uk"], False)),  # by name
    ],
    ids=["offered", "none-picked", "all-picked", "part", "not-granted", "junk",
         "every-by-name"],
)
def test_queries_are_limited_to_the_picked_entities_that_are_granted(
        picked: list[object], granted: list[str], sees_every_entity: bool,
        expected: tuple[list[str], bool]) -> None:
    from app.state import entity_scope

    assert entity_scope(picked, granted, sees_every_entity) == expected

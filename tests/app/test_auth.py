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

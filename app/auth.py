"""Who may sign in to the dashboard and which legal entities each user sees.

Users live in a TOML file (``$PSLAKE_APP_USERS``, else ``DATA_DIR/app/users.toml``)::

    [users."alice"]
    display_name = "Alice Example"
    password_hash = "scrypt$16384$8$1$<salt>$<hash>"   # `pslake app user add alice`
    entities = ["Northwind Advisory US"]              # names or ids; "*" for every entity

    [users."bob@firm.example"]                        # signs in through the identity provider
    sso = true
    entities = ["*"]

Passwords are stored only as salted scrypt hashes (the standard library's, no extra package)
and compared in constant time. A user with ``sso = true`` has no password: they sign in with the
OIDC provider configured in the app's secrets, and their grants are found by the email the
provider vouches for. Nothing here touches Streamlit, so it is tested as plain Python.

A sign-in is checked again on every rerun (``still_signed_in``): the session ends when the user
is removed from the file, their password or sign-in method changes, they sign out in any tab
(``SIGN_OUTS``), a password session has been left unused longer than the idle limit
(``$PSLAKE_APP_IDLE_MINUTES``, 60 by default), or, for single sign-on, the provider's ID token has
expired. Streamlit keeps the token's claims in a cookie for 30 days and checks ``exp`` only when
the provider hands the token over, so ``identity_problem`` checks ``exp`` itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import math
import os
import secrets
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pslake import settings
from pslake.errors import PslakeError

USERS_ENV = "PSLAKE_APP_USERS"
IDLE_ENV = "PSLAKE_APP_IDLE_MINUTES"
DEFAULT_IDLE_MINUTES = 60.0
ALL_ENTITIES = "*"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class User:
    """A user who may sign in: the entities granted are names or ids as the file gives them."""

    username: str
    display_name: str
    password_hash: str
    entities: tuple[str, ...]
    sso: bool = False

    @property
    def sees_every_entity(self) -> bool:
        """True when the user is granted every legal entity (``"*"``)."""
        return ALL_ENTITIES in self.entities


def users_file(data_dir: Path | None = None) -> Path:
    """``$PSLAKE_APP_USERS``, else ``DATA_DIR/app/users.toml``."""
    env = os.environ.get(USERS_ENV)
    return Path(env) if env else settings.data_dir(data_dir) / "app" / "users.toml"


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``, as the users file stores it."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "$".join(["scrypt", str(_SCRYPT["n"]), str(_SCRYPT["r"]), str(_SCRYPT["p"]),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                                r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def load_users(path: Path | None = None) -> dict[str, User]:
    """The users of the file; an empty dict when it does not exist.

    Raises:
        PslakeError: the file is not valid TOML or a user lacks a password hash or entities.
    """
    path = path or users_file()
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise PslakeError(f"{path}: not valid TOML ({exc})") from None
    users = {}
    for username, entry in (document.get("users") or {}).items():
        if not isinstance(entry, dict) or not (entry.get("password_hash") or entry.get("sso")):
            raise PslakeError(f"{path}: user {username!r} has no password_hash "
                              f"(set one with `pslake app user add {username}`, or "
                              "`--sso` for a user of the identity provider)")
        entities = entry.get("entities")
        if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities):
            raise PslakeError(f"{path}: user {username!r} needs `entities`, a list of legal "
                              'entity names or ids ("*" for all)')
        users[username] = User(username=username,
                               display_name=str(entry.get("display_name") or username),
                               password_hash=str(entry.get("password_hash") or ""),
                               entities=tuple(entities), sso=bool(entry.get("sso")))
    return users


def authenticate(users: dict[str, User], username: str, password: str) -> User | None:
    """The user when the name and password match, else None (the same work either way)."""
    user = users.get(username.strip())
    if user is None or user.sso:
        # spend the same time as a real check, so a wrong name is not told apart by timing
        verify_password(password, hash_password("not-a-user"))
        return None
    return user if verify_password(password, user.password_hash) else None


def user_for_identity(users: dict[str, User], email: str | None) -> User | None:
    """The single-sign-on user whose name is the email the identity provider vouched for."""
    if not email:
        return None
    wanted = email.strip().casefold()
    return next((u for u in users.values() if u.sso and u.username.casefold() == wanted), None)


def save_user(path: Path, username: str, password: str | None, entities: list[str],
              display_name: str | None = None) -> None:
    """Add or replace one user in the file, keeping the others (written atomically).

    ``password`` None makes a single-sign-on user (no password; the identity provider's email
    is the user name).
    """
    if not username or any(c in username for c in " \"'[]=\\") or len(username) > 200:
        raise ValueError(f"user name {username!r}: use letters, digits, and - _ . @")
    if not entities:
        raise ValueError('grant at least one entity (--entity NAME, or --entity "*")')
    users = load_users(path)
    users[username] = User(username=username, display_name=display_name or username,
                           password_hash=hash_password(password) if password is not None else "",
                           entities=tuple(entities), sso=password is None)
    lines = ["# pslake dashboard users: `pslake app user add NAME --entity ...` writes this file.",
             "# Passwords are salted scrypt hashes; entities are legal entity names or ids.", ""]
    for user in users.values():
        quoted = ", ".join(_quote(e) for e in user.entities)
        secret = "sso = true" if user.sso else f"password_hash = {_quote(user.password_hash)}"
        lines += [f"[users.{_quote(user.username)}]",
                  f"display_name = {_quote(user.display_name)}", secret,
                  f"entities = [{quoted}]", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(lines))
    os.chmod(partial, 0o600)
    os.replace(partial, path)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def granted_entity_ids(user: User, entities: list[tuple[str, str]]) -> list[str]:
    """The ids of the legal entities ``user`` may see, from (id, name) pairs."""
    if user.sees_every_entity:
        return [entity_id for entity_id, _ in entities]
    wanted = {e.casefold() for e in user.entities}
    return [entity_id for entity_id, name in entities
            if entity_id.casefold() in wanted or name.casefold() in wanted]


@dataclass(frozen=True)
class SignedIn:
    """A session's sign-in: the user as the users file had them then, and when.

    ``at`` is when the password was checked or, for single sign-on, when the identity provider
    issued the ID token (its ``iat``): a sign-out ends every session that began before it,
    including one whose browser still holds the provider's cookie. ``active_at`` is the last
    rerun that found the sign-in good (None: not since ``at``), for the idle limit.
    """

    user: User
    at: float
    active_at: float | None = None


def idle_limit_s() -> float | None:
    """How long a password session may go unused, in seconds (None: no limit).

    From ``$PSLAKE_APP_IDLE_MINUTES`` (60 by default; ``0`` turns the limit off).

    Raises:
        PslakeError: The variable is not a number of minutes.
    """
    raw = os.environ.get(IDLE_ENV, "").strip()
    try:
        minutes = float(raw) if raw else DEFAULT_IDLE_MINUTES
    except ValueError:
        minutes = math.nan
    if not math.isfinite(minutes) or minutes < 0:
        raise PslakeError(f"{IDLE_ENV} must be a number of minutes (0 turns the idle limit "
                          f"off), not {raw!r}.")
    return minutes * 60 if minutes else None


class SignOuts:
    """When each user last signed out, in this server process.

    Signing out ends every session of that user, in every tab: Streamlit clears ``st.user`` only
    in the session that called ``st.logout()``, and a password sign-in lives in one tab's session
    state, so each session asks here on every rerun (``still_signed_in``).
    """

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def sign_out(self, username: str, at: float) -> None:
        """Record that ``username`` signed out at ``at`` (seconds since the epoch)."""
        key = username.casefold()
        with self._lock:
            self._last[key] = max(at, self._last.get(key, at))

    def ended(self, username: str, signed_in_at: float) -> bool:
        """True when ``username`` signed out at or after ``signed_in_at``."""
        with self._lock:
            last = self._last.get(username.casefold())
        return last is not None and signed_in_at <= last


SIGN_OUTS = SignOuts()
SIGNED_OUT = "You signed out (in this or another tab): sign in again to see the dashboard."


def _seconds(value: object) -> float | None:
    """A claim holding seconds since the epoch (a JSON number), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def identity_problem(identity: Mapping[str, Any], now: float) -> str | None:
    """Why the identity the provider vouched for (``st.user``) cannot be used now, or None.

    It must be signed in and carry the ID token's ``iat`` and ``exp`` as numbers, with ``exp``
    after ``now``: an expired token is refused here, whatever the cookie holding it says.
    """
    if identity.get("is_logged_in") is not True:
        return "You are not signed in."
    expires, issued = _seconds(identity.get("exp")), _seconds(identity.get("iat"))
    if expires is None or issued is None:
        return ("The identity provider's sign-in does not say when it was issued and when it "
                "expires (the ID token's `iat` and `exp`), so it is not accepted: sign in again.")
    if expires <= now:
        when = dt.datetime.fromtimestamp(expires, dt.UTC)
        return (f"Your single sign-on expired at {when:%Y-%m-%d %H:%M:%S} UTC: sign in again "
                "to see the dashboard.")
    return None


def still_signed_in(session: SignedIn, users: dict[str, User], identity: Mapping[str, Any] | None,
                    now: float, sign_outs: SignOuts = SIGN_OUTS,
                    idle_s: float | None = None) -> tuple[User | None, str]:
    """The user a session still belongs to (the file's entry now), else None and why not.

    Checked on every rerun. The session ends when the user is no longer in the users file, their
    password or sign-in method changed, they signed out since (in any tab), a password session
    was last used more than ``idle_s`` ago (None: no limit), or, for single sign-on,
    ``identity`` (``st.user``; None when no provider is configured) is gone, expired
    (``identity_problem``) or someone else's: the provider's token lifetime is its idle rule, as
    a session ended here would be signed in again from the provider's cookie. The user returned
    carries the file's current grants, so a grant taken away applies at the next rerun.
    """
    signed = session.user
    current = users.get(signed.username)
    if current is None:
        return None, ("Your account is no longer among the dashboard's users: ask an "
                      "administrator if you should still have access.")
    if current.sso != signed.sso or current.password_hash != signed.password_hash:
        return None, "Your password or sign-in method was changed: sign in again."
    if sign_outs.ended(signed.username, session.at):
        return None, SIGNED_OUT
    last_used = session.active_at if session.active_at is not None else session.at
    if not signed.sso and idle_s is not None and now - last_used > idle_s:
        return None, (f"You were away for more than {idle_s / 60:g} minutes, so you were "
                      "signed out: sign in again.")
    if signed.sso:
        if identity is None:
            return None, "Single sign-on is no longer configured for this dashboard."
        problem = identity_problem(identity, now)
        if problem:
            return None, problem
        email = identity.get("email")
        if not isinstance(email, str) or email.strip().casefold() != signed.username.casefold():
            return None, "The identity provider now vouches for someone else: sign in again."
    return current, ""

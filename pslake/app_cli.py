"""``pslake app``: start the dashboard; ``pslake app user add``: grant a user entities."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import typer

from pslake import settings
from pslake.cli import friendly, say

app_app = typer.Typer(help="The executive dashboard (Streamlit).", no_args_is_help=False)
user_app = typer.Typer(help="Dashboard users and the legal entities each may see.",
                       no_args_is_help=True)
app_app.add_typer(user_app, name="user")

ENTRYPOINT = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
PASSWORD_ENV = "PSLAKE_APP_PASSWORD"


def secrets_file() -> Path:
    """``DATA_DIR/app/secrets.toml``: the app's secrets, such as an identity provider."""
    return settings.data_dir() / "app" / "secrets.toml"


def streamlit_command(port: int, host: str) -> list[str]:
    """The command that serves the dashboard (headless, no usage statistics)."""
    secrets = secrets_file()
    extra = ["--secrets.files", str(secrets.resolve())] if secrets.exists() else []
    return [sys.executable, "-m", "streamlit", "run", str(ENTRYPOINT), *extra,
            "--server.port", str(port), "--server.address", host, "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
            "--client.toolbarMode", "viewer"]


@app_app.callback(invoke_without_command=True)
@friendly
def serve(
    ctx: typer.Context,
    port: int = typer.Option(8501, "--port", help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
) -> None:
    """Serve the dashboard on http://HOST:PORT until interrupted.

    It reads the snapshot `pslake transform` publishes in DATA_DIR/snapshots and the users file
    ($PSLAKE_APP_USERS, else DATA_DIR/app/users.toml). An OIDC identity provider is configured
    in DATA_DIR/app/secrets.toml, Streamlit's `[auth]` section (app/README.md).
    """
    if ctx.invoked_subcommand is not None:
        return
    from app.auth import load_users, users_file

    if not load_users():
        raise ValueError(f"no dashboard users in {users_file()}: add one with "
                         "`pslake app user add NAME --entity \"*\"`")
    env = dict(os.environ, **{settings.DATA_DIR_ENV: str(settings.data_dir().resolve())})
    say(f"app: serving http://{host}:{port} (Ctrl-C to stop)")
    sys.stdout.flush()
    # this process becomes the server, so a signal sent to `pslake app` (Ctrl-C, a supervisor's
    # SIGTERM) reaches Streamlit itself instead of leaving it running without its parent
    command = streamlit_command(port, host)
    os.execve(command[0], command, env)


@user_app.command("add")
@friendly
def add_user(
    username: str = typer.Argument(..., help="The name the user signs in with."),
    entity: list[str] = typer.Option(  # noqa: B008 (typer's option declaration)
        ..., "--entity", "-e", help='A legal entity name or id the user may see (repeatable); '
                                    '"*" for every entity.'),
    display_name: str | None = typer.Option(None, "--display-name", help="Name shown."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help=f"Read the password from stdin [else ${PASSWORD_ENV}, "
                                        "else a prompt]."),
    sso: bool = typer.Option(
        False, "--sso", help="A user of the identity provider: USERNAME is their email, no "
                             "password."),
) -> None:
    """Add or replace a dashboard user; the password is stored only as a salted hash."""
    from app.auth import save_user, users_file

    password: str | None
    if sso:
        password = None
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = os.environ.get(PASSWORD_ENV) or getpass.getpass(f"Password for {username}: ")
    path = users_file()
    save_user(path, username, password, list(entity), display_name)
    say(f"app: user {username} may see {', '.join(entity)} ({path})")

"""The ``brandhooks`` command.

``brandhooks serve`` runs the REST API on an embedded SQLite file; ``brandhooks token ...``
manages API tokens in that file. Every Config field is a flag of ``serve`` and an
environment variable ``BRANDHOOKS_<FIELD>`` (flags win).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Optional

import click

from ._core import BrandhooksError, Config, Hub, NotFoundError, ValidationError

ENV_PREFIX = "BRANDHOOKS_"

# Exit codes scripts can rely on.
EXIT_ERROR = 1       # the operation failed (storage, conflict, ...)
EXIT_USAGE = 2       # bad input (click's own usage errors use 2 as well)
EXIT_NOT_FOUND = 3   # the named object does not exist


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper()


def config_options(**defaults: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One option per Config field: --NAME / BRANDHOOKS_NAME, default from the C++ struct
    unless overridden here (``serve`` delivers by default, a bare Hub does not)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for name, default, help_text in reversed(Config.FIELDS):
            default = defaults.get(name, default)
            flag = "--" + name.replace("_", "-")
            if isinstance(default, bool):
                flag = f"{flag}/--no-{name.replace('_', '-')}"
                kind = None
            else:
                kind = type(default)
            func = click.option(
                flag, name, type=kind, default=default, show_default=True,
                envvar=_env(name), show_envvar=True, help=help_text,
            )(func)
        return func

    return decorate


def config_from(options: dict) -> Config:
    return Config(**{name: options.pop(name) for name, _, _ in Config.FIELDS})


def open_hub(db: str) -> Hub:
    try:
        return Hub(Config(db=db))
    except BrandhooksError as exc:
        fail(exc)


def fail(exc: BaseException) -> None:
    click.echo(f"error: {exc}", err=True)
    if isinstance(exc, ValidationError):
        sys.exit(EXIT_USAGE)
    if isinstance(exc, NotFoundError):
        sys.exit(EXIT_NOT_FOUND)
    sys.exit(EXIT_ERROR)


db_option = click.option(
    "--db", default=Config().db, show_default=True, envvar=_env("db"), show_envvar=True,
    help="SQLite database file",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brandhooks")
def main() -> None:
    """brandhooks: signed, durable webhooks for brands."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar=_env("host"), show_envvar=True,
              help="address to listen on")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              envvar=_env("port"), show_envvar=True, help="port to listen on")
@click.option("--admin-token", default=None, envvar=_env("admin_token"), show_envvar=True,
              help="accept this secret as an admin token (stored hashed)")
@click.option("--log-level", default="info", show_default=True, envvar=_env("log_level"),
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@config_options(deliver=True)
def serve(host: str, port: int, admin_token: Optional[str], log_level: str, **options: Any) -> None:
    """Run the REST API on the embedded SQLite database."""
    import uvicorn

    from .api import create_app

    try:
        hub = Hub(config_from(options))
        if admin_token:
            hub.ensure_admin_token(admin_token, "serve --admin-token")
        elif not hub.has_tokens():
            # First start: make an admin token and show it once; only its hash is kept.
            issued = hub.create_token(None, "created on first start")
            click.echo(
                "No API token existed, so an admin token was created. It is shown only once:\n"
                f"    {issued.secret}\n"
                "Use it as 'Authorization: Bearer <token>'.",
            )
            sys.stdout.flush()
    except BrandhooksError as exc:
        fail(exc)
    try:
        uvicorn.run(create_app(hub), host=host, port=port, log_level=log_level)
    finally:
        hub.close()  # in-flight attempts finish or go back to the queue


@main.group()
def token() -> None:
    """Manage API tokens (admin, or scoped to one brand and its descendants)."""


@token.command("create")
@db_option
@click.option("--brand", default=None, help="scope the token to this brand (default: admin)")
@click.option("--label", default="", help="a note to recognise the token by")
def token_create(db: str, brand: Optional[str], label: str) -> None:
    """Create a token and print it (the last line of stdout; it is not shown again)."""
    hub = open_hub(db)
    try:
        issued = hub.create_token(brand, label)
    except BrandhooksError as exc:
        fail(exc)
    scope = f"brand {issued.info.brand}" if issued.info.brand else "admin"
    click.echo(f"created {scope} token {issued.info.id}", err=True)
    click.echo(issued.secret)


@token.command("list")
@db_option
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def token_list(db: str, as_json: bool) -> None:
    """List live tokens (never their secrets)."""
    for info in open_hub(db).list_tokens():
        row = {"id": info.id, "brand": info.brand, "label": info.label, "created_at": info.created_at}
        if as_json:
            click.echo(json.dumps(row))
        else:
            click.echo(f"{info.id}  {info.brand or 'admin':36}  {info.label}")


@token.command("revoke")
@db_option
@click.argument("token_id")
def token_revoke(db: str, token_id: str) -> None:
    """Revoke a token by id; it stops working at once."""
    try:
        open_hub(db).revoke_token(token_id)
    except BrandhooksError as exc:
        fail(exc)
    click.echo(f"revoked {token_id}", err=True)


if __name__ == "__main__":
    main()

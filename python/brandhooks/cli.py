"""The ``brandhooks`` command.

``brandhooks serve`` runs the REST API (and the dispatcher) on an embedded SQLite file, or on a
PostgreSQL database that any number of nodes share (``--db postgresql://...``). The admin
commands (webhooks, events, deliveries, token, stats) work the same way against the database
(``--db``) or a running server (``--url`` and ``--token``). Every Config field is a
flag of ``serve`` and an environment variable ``BRANDHOOKS_<FIELD>`` (flags win).

Exit codes: 0 success, 1 failure, 2 bad input, 3 not found, 4 not authorised.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import click
import httpx

from . import records
from ._core import (
    BrandhooksError,
    parse_duration,
    Config,
    ForbiddenError,
    Hub,
    Migration,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)
from .database import describe, redact
from .logs import LOG_FORMATS, echo_json, uvicorn_log_config
from .verify import DEFAULT_SIGNATURE_HEADER, SCHEMES, Scheme

ENV_PREFIX = "BRANDHOOKS_"

EXIT_ERROR = 1       # the operation failed (storage, conflict, ...)
EXIT_USAGE = 2       # bad input (click's own usage errors use 2 as well)
EXIT_NOT_FOUND = 3   # the named object does not exist
EXIT_DENIED = 4      # missing, wrong or insufficient token


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper()


LOG_LEVELS = ["debug", "info", "warning", "error", "off"]
# What the delivery log shows at each level (docs/operations.md, "The log").
LOG_SHOWS = {"debug": "every delivery attempt", "info": "every delivery attempt",
             "warning": "deliveries that failed for good", "error": "only errors", "off": "nothing"}
# The C++ core validates every field; these also get a list of choices in --help.
FIELD_CHOICES = {"log_level": LOG_LEVELS, "log_format": LOG_FORMATS}
# Flags (and variables) named otherwise than their field: the issue's and the docs' names.
FIELD_FLAGS = {"lease_timeout_s": "lease_timeout"}


def config_options(**defaults: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One option per Config field: --NAME / BRANDHOOKS_NAME, default from the C++ struct
    unless overridden here (``serve`` delivers and logs each attempt by default, a bare Hub
    does neither)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for name, default, help_text in reversed(Config.FIELDS):
            default = defaults.get(name, default)
            option_name = FIELD_FLAGS.get(name, name)
            flag = "--" + option_name.replace("_", "-")
            kind: Any
            if isinstance(default, bool):
                flag = f"{flag}/--no-{name.replace('_', '-')}"
                kind = None
            elif name in FIELD_CHOICES:
                kind = click.Choice(FIELD_CHOICES[name])
            else:
                kind = type(default)
            func = click.option(
                flag, name, type=kind, default=default, show_default=True,
                envvar=_env(option_name), show_envvar=True, help=help_text,
            )(func)
        return func

    return decorate


def config_from(options: Dict[str, Any]) -> Config:
    return Config(**{name: options.pop(name) for name, _, _ in Config.FIELDS})


def fail(exc: BaseException, as_json: bool = False) -> None:
    if as_json:
        echo_json("error", redact(str(exc)))
    else:
        click.echo(f"error: {redact(str(exc))}", err=True)
    if isinstance(exc, ValidationError):
        sys.exit(EXIT_USAGE)
    if isinstance(exc, NotFoundError):
        sys.exit(EXIT_NOT_FOUND)
    if isinstance(exc, (UnauthorizedError, ForbiddenError)):
        sys.exit(EXIT_DENIED)
    sys.exit(EXIT_ERROR)


# --- where the admin commands act: the local file or a server ----------------------------------

class Local:
    """The admin operations on a database (file or URL), through the Hub (the same dicts as the API)."""

    def __init__(self, db: str, init_db: bool = False) -> None:
        self.hub = Hub(Config(db=db, init_db=init_db))

    def webhooks(self, brand: str, topic: Optional[str]) -> List[Dict[str, Any]]:
        return [w.to_dict() for w in self.hub.list_webhooks(brand, topic)]

    def create_webhook(self, brand: str, topic: str, url: str, tags: Optional[List[str]],
                       **controls: Any) -> Dict[str, Any]:
        return self.hub.create_webhook(brand, topic, url, tags, **controls).to_dict()

    def delete_webhook(self, brand: str, webhook_id: str) -> None:
        self.hub.delete_webhook(brand, webhook_id)

    def rotate_key(self, brand: str, webhook_id: str, grace_seconds: int) -> Dict[str, Any]:
        return self.hub.rotate_key(brand, webhook_id, grace_seconds).to_dict()

    def update_webhook(self, brand: str, webhook_id: str, **changes: Any) -> Dict[str, Any]:
        return self.hub.update_webhook(brand, webhook_id, **changes).to_dict()

    def publish(self, brand: str, topic: str, event: str, payload: Dict[str, Any], tags: Optional[List[str]],
                traceparent: Optional[str] = None, tracestate: Optional[str] = None) -> Dict[str, Any]:
        return self.hub.publish(brand, topic, event, payload, tags, traceparent=traceparent,
                                tracestate=tracestate).to_dict()

    def deliveries(self, brand: str, webhook_id: str, status: Optional[str], limit: int) -> List[Dict[str, Any]]:
        return [d.to_dict() for d in self.hub.list_deliveries(brand, webhook_id, status, 0, limit)]

    def delivery(self, brand: str, delivery_id: str) -> Dict[str, Any]:
        return self.hub.get_delivery(brand, delivery_id).to_dict()

    def redeliver(self, brand: str, delivery_id: str) -> Dict[str, Any]:
        return self.hub.redeliver(brand, delivery_id).to_dict()

    def recover(self, brand: str, webhook_id: str, since: float, limit: int) -> Dict[str, Any]:
        return self.hub.recover(brand, webhook_id, since, limit).to_dict()

    def stats(self) -> Dict[str, Any]:
        return self.hub.stats().to_dict()

    def create_token(self, brand: Optional[str], label: str, expires_in: Optional[int] = None) -> Dict[str, Any]:
        return self.hub.create_token(brand, label, expires_in=expires_in).to_dict()

    def tokens(self) -> List[Dict[str, Any]]:
        return [info.to_dict() for info in self.hub.list_tokens()]

    def revoke_token(self, token_id: str) -> None:
        self.hub.revoke_token(token_id)

    def close(self) -> None:
        pass


class Remote:
    """The same operations on a running server, through brandhooks.Client."""

    def __init__(self, url: str, token: str) -> None:
        from .client import Client

        self.client = Client(url, token)

    def webhooks(self, brand: str, topic: Optional[str]) -> List[Dict[str, Any]]:
        return [_plain(w) for w in self.client.webhooks(brand, topic)]

    def create_webhook(self, brand: str, topic: str, url: str, tags: Optional[List[str]],
                       **controls: Any) -> Dict[str, Any]:
        return _plain(self.client.create_webhook(brand, topic, url, tags, **controls))

    def delete_webhook(self, brand: str, webhook_id: str) -> None:
        self.client.delete_webhook(brand, webhook_id)

    def rotate_key(self, brand: str, webhook_id: str, grace_seconds: int) -> Dict[str, Any]:
        return _plain(self.client.rotate_key(brand, webhook_id, grace_seconds))

    def update_webhook(self, brand: str, webhook_id: str, **changes: Any) -> Dict[str, Any]:
        return _plain(self.client.update_webhook(brand, webhook_id, **changes))

    def publish(self, brand: str, topic: str, event: str, payload: Dict[str, Any], tags: Optional[List[str]],
                traceparent: Optional[str] = None, tracestate: Optional[str] = None) -> Dict[str, Any]:
        return self.client.publish(brand, topic, event, payload, tags, traceparent=traceparent, tracestate=tracestate)

    def deliveries(self, brand: str, webhook_id: str, status: Optional[str], limit: int) -> List[Dict[str, Any]]:
        return [_plain(d) for d in self.client.deliveries(brand, webhook_id, status, limit=limit)]

    def delivery(self, brand: str, delivery_id: str) -> Dict[str, Any]:
        return _plain(self.client.delivery(brand, delivery_id))

    def redeliver(self, brand: str, delivery_id: str) -> Dict[str, Any]:
        return _plain(self.client.redeliver(brand, delivery_id))

    def recover(self, brand: str, webhook_id: str, since: float, limit: int) -> Dict[str, Any]:
        return self.client.recover(brand, webhook_id, since, limit)

    def stats(self) -> Dict[str, Any]:
        return self.client.stats()

    def create_token(self, brand: Optional[str], label: str, expires_in: Optional[int] = None) -> Dict[str, Any]:
        return self.client.create_token(brand, label, expires_in=expires_in)

    def tokens(self) -> List[Dict[str, Any]]:
        return self.client.tokens()

    def revoke_token(self, token_id: str) -> None:
        self.client.revoke_token(token_id)

    def close(self) -> None:
        self.client.close()


def _plain(record: Any) -> Dict[str, Any]:
    """A Client record as the API's JSON object (attempts without the added delivery id)."""
    data: Dict[str, Any] = record.to_dict()
    return data


def target_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--db, or --url with --token: where an admin command acts."""
    func = click.option("--token", envvar=_env("token"), show_envvar=True, help="API token, with --url")(func)
    func = click.option("--url", "server", envvar=_env("url"), show_envvar=True,
                        help="a running server, e.g. http://127.0.0.1:8080 (instead of --db)")(func)
    func = click.option("--db", default=Config().db, show_default=True, envvar=_env("db"), show_envvar=True,
                        help="SQLite database file, or a postgresql:// URL")(func)
    func = click.option("--init-db", is_flag=True, envvar=_env("init_db"), show_envvar=True,
                        help="make a new database in an existing empty (0-byte) --db file")(func)
    func = click.option("--json", "as_json", is_flag=True, help="JSON output (one object per line)")(func)
    return func


def open_target(db: str, server: Optional[str], token: Optional[str], init_db: bool = False) -> Any:
    if server:
        if not token:
            raise click.UsageError("--url needs --token (or BRANDHOOKS_TOKEN)")
        return Remote(server, token)
    return Local(db, init_db)


def run(options: Dict[str, Any], action: Callable[[Any], Any]) -> Any:
    """Opens the target named by the common options, runs `action` on it, maps errors to exit codes."""
    try:
        target = open_target(options["db"], options["server"], options["token"], options["init_db"])
        try:
            return action(target)
        finally:
            target.close()
    except BrandhooksError as exc:
        fail(exc)
    except (OSError, httpx.TransportError) as exc:  # the server cannot be reached
        click.echo(f"error: cannot reach the server: {exc}", err=True)
        sys.exit(EXIT_ERROR)


def show(records: Iterable[Dict[str, Any]], as_json: bool, columns: List[str]) -> None:
    records = list(records)
    if as_json:
        for record in records:
            click.echo(json.dumps(record))
        return
    if not records:
        click.echo("(none)")
        return
    widths = {c: max(len(c), *(len(_cell(r.get(c), c)) for r in records)) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for record in records:
        click.echo("  ".join(_cell(record.get(c), c).ljust(widths[c]) for c in columns))


def _cell(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):  # headers: their names only (values may be credentials); --json shows all
        return ",".join(value) or "-"
    if column.endswith("_at") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return local_time(value)
    return str(value)


def local_time(unix_seconds: float) -> str:
    """ISO 8601 in the local time zone, to the second (--json keeps the numbers)."""
    return dt.datetime.fromtimestamp(unix_seconds).astimezone().isoformat(timespec="seconds")


def parse_since(text: str) -> float:
    """Unix seconds, an ISO date/time, or a duration ago such as 2h or 3d."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.timestamp()
    except ValueError:
        pass
    try:
        return time.time() - parse_duration(text) / 1e6  # the same units as retry_schedule
    except ValidationError:
        pass
    raise click.BadParameter(f"{text!r}: use Unix seconds, an ISO date, or a duration ago like 2h")


# --- commands ---------------------------------------------------------------------------------

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
@config_options(deliver=True, log_level="info")
def serve(host: str, port: int, admin_token: Optional[str], **options: Any) -> None:
    """Run the REST API (and the dispatcher) on a SQLite file or a PostgreSQL database.

    Any number of nodes may serve one postgresql:// database (docs/scaling.md).

    --log-level applies to the delivery log (one line per attempt at info) and to the server's
    own lines (each request at info); --log-format json makes every line of both one JSON
    object (and then no secret is ever printed: no admin token is made on a first start).
    """
    import uvicorn

    from .api import create_app
    from .tracing import Tracing, TracingError

    as_json = options.get("log_format") == "json"
    try:
        config = config_from(options)
        hub = Hub(config)
        tracing = Tracing.start(hub)  # when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set
        if admin_token:
            hub.ensure_admin_token(admin_token, "serve --admin-token")
        elif not hub.has_tokens():
            if as_json:
                # The output goes to a log pipeline, where a secret must never go.
                echo_json("warning", "no API token exists: start with --admin-token (BRANDHOOKS_ADMIN_TOKEN) "
                                     "or create one with `brandhooks token create --db ...`")
            else:
                # First start: make an admin token and show it once; only its hash is kept.
                issued = hub.create_token(None, "created on first start")
                click.echo(
                    "No API token existed, so an admin token was created. It is shown only once:\n"
                    f"    {issued.secret}\n"
                    "Use it as 'Authorization: Bearer <token>'.",
                )
                sys.stdout.flush()
    except (BrandhooksError, TracingError) as exc:
        fail(exc, as_json)
    facts = serving(hub.config, host, port)  # with the node id filled in
    if as_json:
        echo_json("info", "serving", **facts)
    else:
        click.echo(banner(facts), err=True)
    # uvicorn has no "off"; "critical" is as quiet as it gets.
    uvicorn_level = "critical" if config.log_level == "off" else config.log_level
    try:
        # httptools parses HTTP in C (h11, the pure-Python fallback, costs about as much as the
        # core's whole publish); uvloop runs the event loop in C where it exists (not Windows).
        uvicorn.run(create_app(hub, tracing=tracing), host=host, port=port, log_level=uvicorn_level,
                    http="httptools", loop="uvloop" if sys.platform != "win32" else "auto",
                    log_config=uvicorn_log_config(config.log_format, uvicorn_level))
    finally:
        hub.close()  # in-flight attempts finish or go back to the queue
        if tracing is not None:
            tracing.shutdown()  # the last attempts' spans, then a flush to the collector


def serving(config: Config, host: str, port: int) -> Dict[str, Any]:
    """What `serve` is about to do, in the terms of its flags (never a secret): the banner's
    lines, or the fields of its one JSON line."""
    from . import __version__

    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}"
    if config.deliver:
        delivery = (f"on, retry schedule {config.retry_schedule} (jitter {config.retry_jitter:g}), "
                    f"at most {config.max_in_flight} attempts in flight")
    else:
        delivery = "off (--no-deliver: another process delivers)"
    if config.allow_private:
        private = "allowed (--allow-private: deliveries may reach loopback and private networks)"
    else:
        private = "blocked (use --allow-private to deliver to a receiver on this machine)"
        if config.allow_cidrs:
            private += f", except {config.allow_cidrs}"
    return {"version": __version__, "url": url, "docs": f"{url}/docs", "database": describe(config.db),
            "delivery": delivery, "node": config.node_id, "lease_timeout_s": config.lease_timeout_s,
            "private_addresses": private,
            "log": f"{LOG_SHOWS[config.log_level]} (--log-level {config.log_level})",
            "traces": traces_shown()}


def banner(facts: Dict[str, Any]) -> str:
    """The banner `serve` prints in logfmt mode (the default)."""
    return "\n".join([
        f"brandhooks {facts['version']} serving {facts['url']}  (API docs: {facts['docs']})",
        f"  database           {facts['database']}",
        f"  delivery           {facts['delivery']}",
        f"  node               {facts['node']} (leases expire {facts['lease_timeout_s']} s after the last renewal)",
        f"  private addresses  {facts['private_addresses']}",
        f"  log                {facts['log']}",
        f"  traces             {facts['traces']}",
    ])


def traces_shown() -> str:
    """Where spans go (OpenTelemetry's variables; never the OTLP headers, which hold keys)."""
    from .tracing import shown_endpoint, wanted

    if not wanted():
        return "off (set OTEL_EXPORTER_OTLP_ENDPOINT to export spans); traceparent passed on to receivers"
    return f"OpenTelemetry spans over OTLP/HTTP to {shown_endpoint()}"


# The columns of the tables the commands print: some of each record's fields (records.py).
WEBHOOK_COLUMNS = ["id", "topic", "url", "tags", "ordered", "rate_limit", "headers", "created_at"]
DELIVERY_COLUMNS = ["id", "event", "state", "attempt_count", "created_at", "next_attempt_at"]


@main.group()
def webhooks() -> None:
    """List, create, update, delete, rotate, enable and disable webhooks."""


@webhooks.command("list")
@click.argument("brand")
@click.option("--topic", help="only this topic")
@target_options
def webhooks_list(brand: str, topic: Optional[str], as_json: bool, **target: Any) -> None:
    """The brand's live webhooks."""
    show(run(target, lambda t: t.webhooks(brand, topic)), as_json, WEBHOOK_COLUMNS)


def header_options(values: Tuple[str, ...]) -> Dict[str, str]:
    """--header 'Name: value' options as a dict (the core checks names and values)."""
    headers: Dict[str, str] = {}
    for value in values:
        name, colon, text = value.partition(":")
        if not colon:
            raise click.BadParameter(f"{value!r} is not 'Name: value'", param_hint="--header")
        headers[name.strip()] = text.strip()
    return headers


def rate_limit_option(value: Optional[str]) -> Optional[int]:
    """--rate-limit N, or 'none' for no limit."""
    if value is None or value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number nor 'none'", param_hint="--rate-limit") from None


HEADER_HELP = "a header sent with every attempt, 'Name: value' (repeatable)"
RATE_LIMIT_HELP = "at most N deliveries per second (1-10000); 'none': no limit"


@webhooks.command("create")
@click.argument("brand")
@click.argument("topic")
@click.argument("url")
@click.option("--tag", "tags", multiple=True, help="only events with one of these tags (repeatable)")
@click.option("--ordered", is_flag=True, help="deliver one at a time, in publish order")
@click.option("--rate-limit", help=RATE_LIMIT_HELP)
@click.option("--header", "headers", multiple=True, help=HEADER_HELP)
@target_options
def webhooks_create(brand: str, topic: str, url: str, tags: Tuple[str, ...], ordered: bool,
                    rate_limit: Optional[str], headers: Tuple[str, ...], as_json: bool, **target: Any) -> None:
    """Register URL for TOPIC events of BRAND; prints the webhook with its key."""
    controls = {"ordered": ordered, "rate_limit": rate_limit_option(rate_limit), "headers": header_options(headers)}
    created = run(target, lambda t: t.create_webhook(brand, topic, url, list(tags) or None, **controls))
    show([created], as_json, WEBHOOK_COLUMNS + ["key"])


@webhooks.command("update")
@click.argument("brand")
@click.argument("webhook_id")
@click.option("--url", help="a new URL")
@click.option("--topic", help="a new topic")
@click.option("--tag", "tags", multiple=True, help="replace the tags (repeatable)")
@click.option("--no-tags", is_flag=True, help="remove the tags")
@click.option("--ordered/--unordered", default=None, help="deliver one at a time in publish order, or not")
@click.option("--rate-limit", help=RATE_LIMIT_HELP)
@click.option("--header", "headers", multiple=True, help=HEADER_HELP + "; replaces them all")
@click.option("--no-headers", is_flag=True, help="remove the custom headers")
@target_options
def webhooks_update(brand: str, webhook_id: str, url: Optional[str], topic: Optional[str], tags: Tuple[str, ...],
                    no_tags: bool, ordered: Optional[bool], rate_limit: Optional[str], headers: Tuple[str, ...],
                    no_headers: bool, as_json: bool, **target: Any) -> None:
    """Change a webhook: only the options given change."""
    changes: Dict[str, Any] = {}
    if url is not None:
        changes["url"] = url
    if topic is not None:
        changes["topic"] = topic
    if tags or no_tags:
        changes["tags"] = list(tags) or None
    if ordered is not None:
        changes["ordered"] = ordered
    if rate_limit is not None:
        changes["rate_limit"] = rate_limit_option(rate_limit)
    if headers or no_headers:
        changes["headers"] = header_options(headers)
    if not changes:
        raise click.UsageError("give at least one option to change")
    show([run(target, lambda t: t.update_webhook(brand, webhook_id, **changes))], as_json, WEBHOOK_COLUMNS)


@webhooks.command("delete")
@click.argument("brand")
@click.argument("webhook_id")
@target_options
def webhooks_delete(brand: str, webhook_id: str, as_json: bool, **target: Any) -> None:
    """Delete a webhook (soft delete; its waiting deliveries are cancelled)."""
    run(target, lambda t: t.delete_webhook(brand, webhook_id))
    click.echo(f"deleted {webhook_id}", err=True)


@webhooks.command("rotate")
@click.argument("brand")
@click.argument("webhook_id")
@click.option("--grace-seconds", default=86400, show_default=True, type=int,
              help="how long the old key keeps signing")
@target_options
def webhooks_rotate(brand: str, webhook_id: str, grace_seconds: int, as_json: bool, **target: Any) -> None:
    """Give the webhook a new key; prints it."""
    rotated = run(target, lambda t: t.rotate_key(brand, webhook_id, grace_seconds))
    show([rotated], as_json, ["id", "key"])


@webhooks.command("enable")
@click.argument("brand")
@click.argument("webhook_id")
@target_options
def webhooks_enable(brand: str, webhook_id: str, as_json: bool, **target: Any) -> None:
    """Re-enable delivery (clears the failure state)."""
    show([run(target, lambda t: t.update_webhook(brand, webhook_id, enabled=True))], as_json, WEBHOOK_COLUMNS)


@webhooks.command("disable")
@click.argument("brand")
@click.argument("webhook_id")
@target_options
def webhooks_disable(brand: str, webhook_id: str, as_json: bool, **target: Any) -> None:
    """Stop delivering to the webhook (waiting deliveries are cancelled)."""
    show([run(target, lambda t: t.update_webhook(brand, webhook_id, enabled=False))], as_json, WEBHOOK_COLUMNS)


@main.group()
def events() -> None:
    """Publish events."""


@events.command("publish")
@click.argument("brand")
@click.argument("topic")
@click.argument("event")
@click.option("--payload", default="{}", show_default=True, help="a JSON object, or @FILE")
@click.option("--tag", "tags", multiple=True, help="event tag (repeatable)")
@click.option("--traceparent", envvar="TRACEPARENT",
              help="W3C trace context the deliveries carry on to the receivers (default: $TRACEPARENT)")
@click.option("--tracestate", envvar="TRACESTATE", help="its vendor entries (default: $TRACESTATE)")
@target_options
def events_publish(brand: str, topic: str, event: str, payload: str, tags: Tuple[str, ...],
                   traceparent: Optional[str], tracestate: Optional[str], as_json: bool, **target: Any) -> None:
    """Publish EVENT (e.g. Created) of TOPIC for BRAND; prints the event id and deliveries."""
    text = open(payload[1:], encoding="utf-8").read() if payload.startswith("@") else payload
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    if not isinstance(body, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--payload")
    published = run(target, lambda t: t.publish(brand, topic, event, body, list(tags) or None, traceparent, tracestate))
    show([published], as_json, list(records.names("published")))


@main.group()
def deliveries() -> None:
    """Look at deliveries and send them again."""


@deliveries.command("list")
@click.argument("brand")
@click.argument("webhook_id")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed", "cancelled"]))
@click.option("--limit", default=100, show_default=True, type=click.IntRange(0, 1000))
@target_options
def deliveries_list(brand: str, webhook_id: str, status: Optional[str], limit: int, as_json: bool,
                    **target: Any) -> None:
    """The webhook's deliveries, newest first."""
    show(run(target, lambda t: t.deliveries(brand, webhook_id, status, limit)), as_json, DELIVERY_COLUMNS)


@deliveries.command("show")
@click.argument("brand")
@click.argument("delivery_id")
@target_options
def deliveries_show(brand: str, delivery_id: str, as_json: bool, **target: Any) -> None:
    """One delivery and each of its attempts."""
    delivery = run(target, lambda t: t.delivery(brand, delivery_id))
    if as_json:
        click.echo(json.dumps(delivery))
        return
    show([delivery], False, DELIVERY_COLUMNS)
    click.echo()
    show(delivery["attempts"], False, ["number", "started_at", "duration_ms", "status", "error", "detail"])


@deliveries.command("redeliver")
@click.argument("brand")
@click.argument("delivery_id")
@target_options
def deliveries_redeliver(brand: str, delivery_id: str, as_json: bool, **target: Any) -> None:
    """A new attempt now, whatever the delivery's state."""
    show([run(target, lambda t: t.redeliver(brand, delivery_id))], as_json, DELIVERY_COLUMNS)


@deliveries.command("recover")
@click.argument("brand")
@click.argument("webhook_id")
@click.option("--since", required=True, help="Unix seconds, an ISO date, or a duration ago (2h, 3d)")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 100000),
              help="deliveries queued per request")
@target_options
def deliveries_recover(brand: str, webhook_id: str, since: str, batch: int, as_json: bool, **target: Any) -> None:
    """Queue again every failed delivery of the webhook created since --since."""
    start = parse_since(since)

    # Progress only on a terminal, and erased before the result is printed (once).
    progress = not as_json and sys.stderr.isatty()

    def recover_all(t: Any) -> List[str]:
        queued: List[str] = []
        while True:
            result = t.recover(brand, webhook_id, start, batch)
            queued += result["deliveries"]
            if progress:
                click.echo(f"\rqueued {len(queued)} so far", err=True, nl=False)
            if result["queued"] < batch:
                break
        if progress:
            click.echo("\r\033[K", err=True, nl=False)
        return queued

    ids = run(target, recover_all)
    if as_json:
        click.echo(json.dumps({"queued": len(ids), "deliveries": ids}))
    else:
        click.echo(f"{len(ids)} deliveries queued again")


@main.group()
def token() -> None:
    """Manage API tokens (admin, or scoped to one brand and its descendants)."""


@token.command("create")
@click.option("--brand", default=None, help="scope the token to this brand (default: admin)")
@click.option("--label", default="", help="a note to recognise the token by")
@click.option("--expires-in", type=int, default=None, metavar="SECONDS",
              help="refuse the token after this many seconds (60 to 2592000, 30 days; default: never)")
@target_options
def token_create(brand: Optional[str], label: str, expires_in: Optional[int], as_json: bool, **target: Any) -> None:
    """Create a token and print it (the last line of stdout; it is not shown again)."""
    created = run(target, lambda t: t.create_token(brand, label, expires_in))
    if as_json:
        click.echo(json.dumps(created))
        return
    scope = f"brand {created['brand']}" if created["brand"] else "admin"
    expiry = f", expires {local_time(created['expires_at'])}" if created["expires_at"] is not None else ""
    click.echo(f"created {scope} token {created['id']}{expiry}", err=True)
    click.echo(created["token"])


@token.command("list")
@target_options
def token_list(as_json: bool, **target: Any) -> None:
    """List live tokens (never their secrets)."""
    show(run(target, lambda t: t.tokens()), as_json, list(records.names("token")))


@token.command("revoke")
@click.argument("token_id")
@target_options
def token_revoke(token_id: str, as_json: bool, **target: Any) -> None:
    """Revoke a token by id; it stops working at once."""
    run(target, lambda t: t.revoke_token(token_id))
    click.echo(f"revoked {token_id}", err=True)


@main.command()
@target_options
def stats(as_json: bool, **target: Any) -> None:
    """Counts of webhooks and deliveries, and the queue."""
    numbers = run(target, lambda t: t.stats())
    if as_json:
        click.echo(json.dumps(numbers))
        return
    for name, value in numbers.items():
        click.echo(f"{name:18} {_cell(value, name)}")


@main.command()
@click.option("--from", "source", required=True, metavar="FILE.db", help="the brandhooks SQLite file to move")
@click.option("--to", "target", required=True, metavar="postgresql://...",
              help="an empty PostgreSQL database (or a new SQLite file)")
@click.option("--batch-rows", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="rows per batch (one transaction of the target each)")
def migrate(source: str, target: str, batch_rows: int) -> None:
    """Move a SQLite database to PostgreSQL: brands, webhooks and their keys, tokens, events,
    deliveries and their attempts, as they are. Then compare the row counts of both.

    Stop every node that uses the SQLite file first. The target must be empty. Exits 1 when a
    count differs.
    """
    try:
        migration = Migration(source, target, batch_rows)
        with click.progressbar(length=migration.total_rows, label="moving rows", file=sys.stderr,
                               show_pos=True) as bar:
            while migration.step():
                bar.update(migration.moved_rows - bar.pos)
            bar.update(migration.moved_rows - bar.pos)
        counts = migration.counts()
    except BrandhooksError as exc:
        fail(exc)
    mismatched = [table for table, moved_from, moved_to in counts if moved_from != moved_to]
    click.echo(f"{'TABLE':14} {'SOURCE':>10} {'TARGET':>10}")
    for table, moved_from, moved_to in counts:
        click.echo(f"{table:14} {moved_from:10} {moved_to:10}{'  MISMATCH' if moved_from != moved_to else ''}")
    if mismatched:
        click.echo(f"error: counts differ for {', '.join(mismatched)}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"moved {migration.moved_rows} rows; every count matches", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--key", "keys", multiple=True, help="webhook key to verify with (repeatable: any may match)")
@click.option("--scheme", type=click.Choice(SCHEMES), default="standard", show_default=True,
              help="signature to check: standard (webhook-* headers, replay-safe) or simple (hex HMAC header)")
@click.option("--signature-header", default=DEFAULT_SIGNATURE_HEADER, show_default=True,
              help="the simple scheme's header")
@click.option("--count", default=0, type=int, help="exit after this many deliveries (0: run until Ctrl-C)")
def receive(host: str, port: int, keys: Tuple[str, ...], scheme: Scheme, signature_header: str, count: int) -> None:
    """A local receiver for development: prints each delivery and whether it verifies.

    Answers 204 when the chosen scheme's signature verifies with one of the keys (or no key is
    given), 401 otherwise.
    """
    from .verify import SignatureError, verify

    received = {"n": 0}
    enough = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            verdict, ok = "not checked (no --key)", True
            if keys:
                ok = False
                for key in keys:
                    try:
                        verdict = f"{verify(body, self.headers, key, scheme=scheme, signature_header=signature_header)} signature OK"
                        ok = True
                        break
                    except (SignatureError, ValidationError) as exc:
                        verdict = f"INVALID: {exc}"
            try:
                event = json.loads(body)
                summary = f"{event.get('topic')}/{event.get('event')} event {event.get('id')} brand {event.get('brand')}"
            except ValueError:
                summary = f"{len(body)} bytes (not JSON)"
            click.echo(f"{self.path}  webhook-id {self.headers.get('webhook-id', '-')}  {summary}  {verdict}")
            click.echo(body.decode("utf-8", "replace"))
            sys.stdout.flush()
            self.send_response(204 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            received["n"] += 1
            if count and received["n"] >= count:
                enough.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    click.echo(f"listening on http://{host}:{server.server_address[1]}/", err=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        enough.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()

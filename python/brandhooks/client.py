"""A typed Python client of the brandhooks REST API, for scripts and Jupyter notebooks.

    from brandhooks import Client

    with Client("http://127.0.0.1:8080", token) as api:
        hooks = api.webhooks(brand)
        hooks.to_frame()                      # a pandas DataFrame (needs pandas)
        failing = api.deliveries(brand, hooks[0].id, status="failed")
        failing                               # an HTML table in Jupyter

Errors come back as the package's exceptions (ValidationError, NotFoundError, ...), with the
API's message.
"""

from __future__ import annotations

import html
from typing import Any, ClassVar, Dict, FrozenSet, Generic, Iterable, List, Optional, Tuple, TypeVar

import httpx

from . import _core, records
from ._core import BrandhooksError, ValidationError
from .errors import ERROR_STATUS

T = TypeVar("T")

# The API's error codes back to the exceptions they came from (BadRequest: a body that is not JSON).
_ERRORS = {code: cls for cls, (_, code) in ERROR_STATUS.items()}
_ERRORS["BadRequest"] = ValidationError


def _html_table(rows: List[Dict[str, Any]], columns: List[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if row.get(c) is None else str(row.get(c)))}</td>" for c in columns)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Record:
    """A record of the API, read-only, shown as a table row. Its fields are the core's table of the
    record (``brandhooks.records.fields``), in the order of the API's JSON: a subclass names the
    record (``class Webhook(Record, record="webhook")``) and gets them; it writes none itself."""

    RECORD: ClassVar[str]
    FIELDS: ClassVar[Tuple[str, ...]]
    #: Fields the client adds to the API's (name: default), and fields never shown whole.
    EXTRA: ClassVar[Dict[str, Any]] = {}
    SECRET: ClassVar[FrozenSet[str]] = frozenset()

    def __init_subclass__(cls, record: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.RECORD, cls.FIELDS = record, records.names(record)

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self.FIELDS) - set(self.EXTRA)
        missing = [name for name in self.FIELDS if name not in values]
        if unknown or missing:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(unknown)}, missing {missing}")
        for name in self.FIELDS:
            object.__setattr__(self, name, values[name])
        for name, default in self.EXTRA.items():
            object.__setattr__(self, name, values.get(name, default))

    def __getattr__(self, name: str) -> Any:
        # Reached only for names that are not fields; tells type checkers that fields are attributes.
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS if name not in self.SECRET)
        return f"{type(self).__name__}({shown})"

    def _values(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in (*self.FIELDS, *self.EXTRA)}

    def to_dict(self) -> Dict[str, Any]:
        """The record as the API's JSON object (records inside as dicts too; no client additions)."""
        return {name: _plain(getattr(self, name)) for name in self.FIELDS}

    def row(self) -> Dict[str, Any]:
        """A flat row for tables and frames (secrets shortened: tables are shared and screenshotted)."""
        row = self._values()
        for name in self.SECRET:
            row[name] = str(row[name])[:8] + "…"
        return row

    def _repr_html_(self) -> str:
        row = self.row()
        return _html_table([row], list(row))


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


class Webhook(Record, record="webhook"):
    SECRET = frozenset({"key"})  # never in reprs (logs, tracebacks) nor whole in tables


class Attempt(Record, record="attempt"):
    EXTRA = {"delivery": None}  # the delivery id, when listed across deliveries


class Delivery(Record, record="delivery"):
    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Delivery":
        attempts = [Attempt(**a, delivery=data["id"]) for a in data.get("attempts", [])]
        return cls(**{**data, "attempts": attempts})

    def row(self) -> Dict[str, Any]:
        row = super().row()
        last = self.attempts[-1] if self.attempts else None
        del row["attempts"]
        row["last_status"] = last.status if last else None
        row["last_error"] = last.error if last else None
        return row


#: The columns that hold times (Unix seconds), shown as dates in frames.
_TIME_FIELDS = sorted({f["name"] for record in _core.record_names() for f in records.fields(record) if f["type"] == "time"})


class Records(List[T], Generic[T]):
    """A list of records (webhooks, deliveries, attempts) that knows the total matching and
    shows itself as a table: `to_frame()` for pandas, `_repr_html_()` for Jupyter."""

    def __init__(self, items: Iterable[T] = (), total: Optional[int] = None) -> None:
        super().__init__(items)
        self.total = len(self) if total is None else total

    def rows(self) -> List[Dict[str, Any]]:
        return [item.row() if isinstance(item, Record) else _core_row(item) for item in self]

    def to_frame(self) -> Any:
        try:
            import pandas as pd  # type: ignore[import-untyped, unused-ignore]
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError("to_frame() needs pandas: pip install pandas (or '.[notebook]' from the clone)") from exc
        frame = pd.DataFrame(self.rows())
        for column in _TIME_FIELDS:
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
        return frame

    def attempts(self) -> "Records[Attempt]":
        """Every attempt of these deliveries, one record each."""
        return Records(a for d in self if isinstance(d, Delivery) for a in d.attempts)

    def _repr_html_(self) -> str:
        rows = self.rows()
        columns = list(rows[0]) if rows else []
        caption = f"<p>{len(self)} of {self.total}</p>"
        return caption + _html_table(rows, columns)


def _core_row(item: Any) -> Dict[str, Any]:
    """A row for the core's own records (brandhooks.Hub results), through their to_dict()."""
    data: Dict[str, Any] = item.to_dict()
    if "attempts" in data:
        return Delivery.from_json(data).row()
    if data.get("type") == "brand_webhook":
        return Webhook(**data).row()
    return data


def to_frame(items: Iterable[Any]) -> Any:
    """A pandas DataFrame of webhooks, deliveries or attempts, from the Client or from a Hub."""
    return Records(list(items)).to_frame()


def _tables_for_core_records() -> None:
    """The Hub's own pages and records show as tables too (Jupyter, pandas)."""
    for page in (_core.WebhookPage, _core.DeliveryPage):
        page.to_frame = lambda self: Records(self.items, self.total).to_frame()  # type: ignore[method-assign]
        page._repr_html_ = lambda self: Records(self.items, self.total)._repr_html_()  # type: ignore[method-assign]
    for record in (_core.Webhook, _core.Delivery):
        record._repr_html_ = lambda self: Records([self])._repr_html_()  # type: ignore[method-assign]


_tables_for_core_records()


class Client:
    """The REST API of one brandhooks server."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}"})

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- plumbing ------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, json: Any = None, params: Optional[Dict[str, Any]] = None,
              headers: Optional[Dict[str, str]] = None) -> Any:
        response = self._http.request(method, path, json=json, headers=headers,
                                      params={k: v for k, v in (params or {}).items() if v is not None})
        if response.status_code == 204:
            return None
        if response.headers.get("content-type", "").startswith("text/plain"):
            if response.is_success:
                return response.text
        body = response.json() if response.content else {}
        if response.is_error:
            error = _ERRORS.get(str(body.get("code")), BrandhooksError)
            raise error(body.get("message", f"HTTP {response.status_code}"))
        return body

    def _data(self, method: str, path: str, **kwargs: Any) -> Dict[str, Any]:
        data: Dict[str, Any] = self._call(method, path, **kwargs)["data"]
        return data

    # --- webhooks ------------------------------------------------------------------------------
    def webhooks(self, brand: str, topic: Optional[str] = None, start: Optional[int] = None,
                 limit: Optional[int] = None) -> Records[Webhook]:
        body = self._call("GET", f"/brands/{brand}/webhooks", params={"topic": topic, "start": start, "limit": limit})
        return Records((Webhook(**w) for w in body["data"]), body["info"]["total"])

    def webhook(self, brand: str, webhook_id: str) -> Webhook:
        return Webhook(**self._data("GET", f"/brands/{brand}/webhooks/{webhook_id}"))

    def create_webhook(self, brand: str, topic: str, url: str, tags: Optional[List[str]] = None, *,
                       ordered: bool = False, rate_limit: Optional[int] = None,
                       headers: Optional[Dict[str, str]] = None) -> Webhook:
        body: Dict[str, Any] = {"topic": topic, "url": url, "ordered": ordered, "rate_limit": rate_limit,
                                "headers": headers or {}}
        if tags is not None:
            body["tags"] = tags
        return Webhook(**self._data("POST", f"/brands/{brand}/webhooks", json=body))

    def update_webhook(self, brand: str, webhook_id: str, **changes: Any) -> Webhook:
        """Change url=, topic=, tags=, enabled=, ordered=, rate_limit= or headers=."""
        return Webhook(**self._data("PATCH", f"/brands/{brand}/webhooks/{webhook_id}", json=changes))

    def enable(self, brand: str, webhook_id: str) -> Webhook:
        return self.update_webhook(brand, webhook_id, enabled=True)

    def disable(self, brand: str, webhook_id: str) -> Webhook:
        return self.update_webhook(brand, webhook_id, enabled=False)

    def webhook_state(self, brand: str, webhook_id: str) -> Dict[str, Any]:
        """{"id", "enabled", "disabled_at", "disabled_reason", "failing_since", "last_success_at"}."""
        return self._data("GET", f"/brands/{brand}/webhooks/{webhook_id}/state")

    def delete_webhook(self, brand: str, webhook_id: str) -> None:
        self._call("DELETE", f"/brands/{brand}/webhooks/{webhook_id}")

    def rotate_key(self, brand: str, webhook_id: str, grace_seconds: int = 86400) -> Webhook:
        return Webhook(**self._data("POST", f"/brands/{brand}/webhooks/{webhook_id}/rotate",
                                    json={"grace_seconds": grace_seconds}))

    def set_brand_parent(self, brand: str, parent: Optional[str]) -> Dict[str, Any]:
        return self._data("PUT", f"/brands/{brand}", json={"parent": parent})

    # --- events and deliveries -----------------------------------------------------------------
    def publish(self, brand: str, topic: str, event: str, payload: Dict[str, Any],
                tags: Optional[List[str]] = None, *, idempotency_key: Optional[str] = None,
                traceparent: Optional[str] = None, tracestate: Optional[str] = None) -> Dict[str, Any]:
        """{"id": event id, "deliveries": N}; committed when this returns. With idempotency_key, a
        retry after a lost answer publishes nothing and answers the first answer again. With
        traceparent (and tracestate), the deliveries continue that W3C trace."""
        body: Dict[str, Any] = {"topic": topic, "event": event, "payload": payload}
        if tags is not None:
            body["tags"] = tags
        sent = {"Idempotency-Key": idempotency_key, "traceparent": traceparent, "tracestate": tracestate}
        headers = {name: value for name, value in sent.items() if value is not None}
        return self._data("POST", f"/brands/{brand}/events", json=body, headers=headers or None)

    def deliveries(self, brand: str, webhook_id: str, status: Optional[str] = None, start: Optional[int] = None,
                   limit: Optional[int] = None) -> Records[Delivery]:
        body = self._call("GET", f"/brands/{brand}/webhooks/{webhook_id}/deliveries",
                          params={"status": status, "start": start, "limit": limit})
        return Records((Delivery.from_json(d) for d in body["data"]), body["info"]["total"])

    def delivery(self, brand: str, delivery_id: str) -> Delivery:
        return Delivery.from_json(self._data("GET", f"/brands/{brand}/deliveries/{delivery_id}"))

    def redeliver(self, brand: str, delivery_id: str) -> Delivery:
        return Delivery.from_json(self._data("POST", f"/brands/{brand}/deliveries/{delivery_id}/redeliver"))

    def send_test_event(self, brand: str, webhook_id: str) -> Delivery:
        """Publish a test event to this webhook only; its delivery (pending)."""
        return Delivery.from_json(self._data("POST", f"/brands/{brand}/webhooks/{webhook_id}/test"))

    def delivery_stats(self, brand: str, hours: int = 24) -> Dict[str, Any]:
        """Attempts per minute by outcome and p50/p99 per live webhook over the last `hours` (1 to 24)."""
        return self._data("GET", f"/brands/{brand}/delivery-stats", params={"hours": hours})

    def recover(self, brand: str, webhook_id: str, since: float, limit: Optional[int] = None) -> Dict[str, Any]:
        """Queue again the webhook's failed deliveries created since `since` (Unix seconds)."""
        body: Dict[str, Any] = {"since": since}
        if limit is not None:
            body["limit"] = limit
        return self._data("POST", f"/brands/{brand}/webhooks/{webhook_id}/recover", json=body)

    # --- service -------------------------------------------------------------------------------
    def stats(self) -> Dict[str, Any]:
        return self._data("GET", "/stats")

    def metrics(self) -> str:
        """The Prometheus text of /metrics."""
        text: str = self._call("GET", "/metrics")
        return text

    def health(self) -> Dict[str, Any]:
        return self._data("GET", "/healthz")

    def create_token(self, brand: Optional[str] = None, label: str = "", *,
                     expires_in: Optional[int] = None) -> Dict[str, Any]:
        """{"id", "brand", "label", "created_at", "expires_at", "token"}; the secret is shown only
        here. expires_in: seconds until the token is refused (None: never)."""
        return self._data("POST", "/tokens", json={"brand": brand, "label": label, "expires_in": expires_in})

    def current_token(self) -> Dict[str, Any]:
        """This client's own token: {"id", "brand" (None: admin), "label", "created_at", "expires_at"}."""
        return self._data("GET", "/tokens/current")

    def portal_link(self, brand: str, expires_in: int = 3600) -> Dict[str, Any]:
        """{"url", "expires_at", "brand", "token_id"}: a link that opens the portal signed in for
        the brand; the url holds a new token's secret."""
        return self._data("POST", f"/brands/{brand}/portal-links", json={"expires_in": expires_in})

    def descendants(self, brand: str) -> List[Dict[str, Any]]:
        """The brands below this one in the brand tree ({"id", "parent"} each), breadth first."""
        brands: List[Dict[str, Any]] = self._call("GET", f"/brands/{brand}/descendants")["data"]
        return brands

    def tokens(self) -> List[Dict[str, Any]]:
        tokens: List[Dict[str, Any]] = self._call("GET", "/tokens")["data"]
        return tokens

    def revoke_token(self, token_id: str) -> None:
        self._call("DELETE", f"/tokens/{token_id}")


__all__ = ["Attempt", "Client", "Delivery", "Record", "Records", "Webhook", "to_frame"]

"""The Python face of the core: Config, the exception hierarchy, the GIL."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid

import pytest

import brandhooks
from brandhooks import Config, Hub


def test_config_has_the_cpp_defaults_and_refuses_unknown_fields():
    config = Config(db="x.db")
    assert (config.db, config.synchronous, config.busy_timeout_ms) == ("x.db", "normal", 5000)
    names = [name for name, _, _ in Config.FIELDS]
    assert names[:7] == ["db", "init_db", "synchronous", "busy_timeout_ms", "api_connections", "dispatcher_connections",
                         "deliver"]
    assert Config().init_db is False  # an empty database file is refused unless asked for
    assert {"retry_schedule", "signature_header", "allow_private", "ca_file"} <= set(names)
    defaults = Config()
    for name, default, help_text in Config.FIELDS:
        assert getattr(defaults, name) == default and help_text
    assert "db='x.db'" in repr(config)
    with pytest.raises(TypeError):
        Config(colour="blue")
    with pytest.raises(TypeError):
        Config(busy_timeout_ms="soon")


def test_errors_form_one_hierarchy(tmp_path):
    hub = Hub(str(tmp_path / "h.db"))
    for exc_type in (brandhooks.ValidationError, brandhooks.NotFoundError, brandhooks.ConflictError,
                     brandhooks.UnauthorizedError, brandhooks.ForbiddenError, brandhooks.StorageError):
        assert issubclass(exc_type, brandhooks.BrandhooksError)
    with pytest.raises(brandhooks.ValidationError, match="topic"):
        hub.create_webhook(str(uuid.uuid4()), "deals", "https://x.example/")
    with pytest.raises(brandhooks.NotFoundError):
        hub.get_webhook(str(uuid.uuid4()), str(uuid.uuid4()))
    with pytest.raises(brandhooks.UnauthorizedError):
        hub.authenticate("bh_nope")
    not_a_db = tmp_path / "garbage.db"
    not_a_db.write_bytes(b"x" * 4096)
    with pytest.raises(brandhooks.StorageError):
        Hub(str(not_a_db))


def test_records_read_like_the_contract(tmp_path):
    hub = Hub(Config(db=str(tmp_path / "r.db")))
    brand = str(uuid.uuid4())
    hook = hub.create_webhook(brand, "Contacts", "https://r.example/", ["a"])
    assert hook.to_dict()["tags"] == ["a"] and hook.tags == ["a"]
    assert isinstance(hook.created_at, float) and hook.deleted_at is None
    page = hub.list_webhooks(brand)
    assert len(page) == 1 and page.total == 1 and [h.id for h in page] == [hook.id]
    assert hub.delete_webhook(brand, hook.id).deleted_at >= hook.created_at


def test_blocking_calls_release_the_gil(tmp_path):
    """While the core waits on a locked database, other Python threads keep running."""
    path = tmp_path / "locked.db"
    hub = Hub(Config(db=str(path), busy_timeout_ms=1500))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    result = {}

    def write():
        try:
            hub.create_webhook(str(uuid.uuid4()), "Deals", "https://slow.example/")
            result["outcome"] = "written"
        except brandhooks.StorageError:
            result["outcome"] = "timed out"

    writer = threading.Thread(target=write)
    writer.start()
    ticks = 0
    start = time.monotonic()
    while writer.is_alive() and time.monotonic() - start < 1.0:
        ticks += 1  # only possible while the writer's thread has released the GIL
        time.sleep(0.001)
    blocker.execute("COMMIT")
    blocker.close()
    writer.join(timeout=10)
    assert ticks > 100
    assert result["outcome"] == "written"  # the lock went away inside the busy timeout


def test_hub_records_show_as_tables_and_frames(tmp_path):
    hub = Hub(Config(db=str(tmp_path / "t.db")))
    brand = str(uuid.uuid4())
    hooks = [hub.create_webhook(brand, "Deals", f"https://t.example/{i}") for i in range(3)]
    hub.publish(brand, "Deals", "Created", {"x": 1})
    page = hub.list_webhooks(brand)
    frame = page.to_frame()
    assert list(frame["url"]) == [h.url for h in hooks]
    assert str(frame["created_at"].dtype).startswith("datetime64")
    assert all(key.endswith("…") for key in frame["key"])  # keys are not printed whole
    html = page._repr_html_()
    assert "<table" in html and "https://t.example/2" in html and hooks[0].key not in html
    deliveries = hub.list_deliveries(brand, hooks[0].id)
    assert list(brandhooks.to_frame(deliveries)["state"]) == ["pending"]
    assert "pending" in deliveries._repr_html_() and "<table" in hooks[0]._repr_html_()

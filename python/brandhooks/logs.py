"""How `brandhooks serve` writes its own lines (docs/operations.md, "The log").

The core writes the delivery log itself (logfmt, or JSON with Config.log_format "json"). In JSON
mode the server's lines match it: one object per line, "time", "level" and "msg" first, then the
fields of the line (a request's client, method, path, http_version and status; an exception's
traceback). In the default logfmt mode uvicorn keeps its own format. A field is added to the
object only when the line has it, so a new one (a trace id) is just another key."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Dict, Optional, Tuple

#: Config.log_format's values.
LOG_FORMATS = ["logfmt", "json"]


def iso_time(seconds: float) -> str:
    """UTC with milliseconds, as the core's lines have it: 2026-12-07T10:00:00.123Z."""
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((seconds - whole) * 1000):03d}Z"


def json_line(level: str, msg: str, **fields: Any) -> str:
    """One JSON log line (without its newline): time, level, msg, then `fields` in order."""
    return json.dumps({"time": iso_time(time.time()), "level": level, "msg": msg, **fields},
                      separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object: its message, and its traceback when it has one."""

    def format(self, record: logging.LogRecord) -> str:
        line: Dict[str, Any] = {"time": iso_time(record.created), "level": record.levelname.lower(),
                                "msg": record.getMessage()}
        line.update(self.fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))

    def fields(self, record: logging.LogRecord) -> Dict[str, Any]:
        return {}


class JsonAccessFormatter(JsonFormatter):
    """uvicorn's access line (client, method, path with query, HTTP version, status) as fields."""

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            record = logging.makeLogRecord({**record.__dict__, "msg": "request", "args": None,
                                            "request": record.args})
        return super().format(record)

    def fields(self, record: logging.LogRecord) -> Dict[str, Any]:
        request: Optional[Tuple[Any, ...]] = getattr(record, "request", None)
        if request is None:
            return {}
        client, method, path, http_version, status = request
        return {"client": client, "method": method, "path": path, "http_version": http_version, "status": status}


def uvicorn_log_config(log_format: str, level: str) -> Dict[str, Any]:
    """uvicorn's log_config for `log_format`: in logfmt mode uvicorn's own. In JSON mode uvicorn's
    lines and the package's own (the brandhooks loggers, from `level` up) go to stderr as JSON,
    each line whole."""
    if log_format != "json":
        from uvicorn.config import LOGGING_CONFIG

        return LOGGING_CONFIG
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}, "access": {"()": JsonAccessFormatter}},
        "handlers": {"default": {**handler, "formatter": "json"}, "access": {**handler, "formatter": "access"}},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "brandhooks": {"handlers": ["default"], "level": level.upper(), "propagate": False},
        },
    }


def echo_json(level: str, msg: str, **fields: Any) -> None:
    """Writes one JSON line to stderr (the serve command's own lines in JSON mode)."""
    sys.stderr.write(json_line(level, msg, **fields) + "\n")
    sys.stderr.flush()

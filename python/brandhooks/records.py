"""The shapes of the records the REST API answers with, derived from their one definition: the
core's field tables (``_core.record_fields``), from which the core also writes every record's
JSON. Adding a field there adds it to the JSON, the OpenAPI description (the models below), the
client's records (client.py) and the docs' field tables (``python -m brandhooks.records FILE...``
rewrites them; a test checks they are current).

A field's type is one of ``string``, ``uuid`` (a string), ``integer``, ``number``, ``time`` (Unix
seconds as a float with microseconds), ``boolean``, ``string[]``, ``<record>[]`` or ``string{}`` (an
object of strings); ``values``
lists the allowed values when the set is closed (one value: a constant).
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple

from pydantic import BaseModel, Field, create_model

from . import _core

_SCALARS: Dict[str, type] = {"string": str, "uuid": str, "integer": int, "number": float, "time": float,
                             "boolean": bool}


def fields(record: str) -> List[Dict[str, Any]]:
    """The record's fields in the order its JSON has them (KeyError for an unknown record)."""
    return _core.record_fields(record)


def names(record: str) -> Tuple[str, ...]:
    return tuple(field["name"] for field in fields(record))


def values(record: str, field: str) -> Tuple[str, ...]:
    """The allowed values of a field with a closed set (a topic, a delivery's state)."""
    found: Tuple[str, ...] = next(f["values"] for f in fields(record) if f["name"] == field)
    return found


def schema_name(record: str) -> str:
    """The record's name in the OpenAPI description: webhook_state -> WebhookStateOut."""
    return "".join(part.capitalize() for part in record.split("_")) + "Out"


# --- OpenAPI: pydantic models used only to describe the answers (the core writes them) --------

class ListInfo(BaseModel):
    count: int = Field(description="records in data")
    total: int = Field(description="records matching the query, without paging")


def _annotation(field: Dict[str, Any]) -> Any:
    kind: str = field["type"]
    annotation: Any
    if field["values"]:
        annotation = Literal.__getitem__(tuple(field["values"]))
    elif kind.endswith("{}"):
        value: Any = _SCALARS[kind[:-2]]
        annotation = Dict[str, value]
    elif kind.endswith("[]"):
        item: Any = _SCALARS.get(kind[:-2]) or model(kind[:-2])
        annotation = List[item]
    else:
        annotation = _SCALARS[kind]
    return Optional[annotation] if field["nullable"] else annotation


@functools.cache
def model(record: str) -> type[BaseModel]:
    """The record as a pydantic model, for the OpenAPI description: every field required, in order."""
    definitions: Dict[str, Any] = {
        field["name"]: (_annotation(field), Field(description=field["description"],
                                                  json_schema_extra={"format": "uuid"} if field["type"] == "uuid" else None))
        for field in fields(record)
    }
    built: type[BaseModel] = create_model(schema_name(record), **definitions)
    return built


@functools.cache
def envelope(record: str, listed: bool = False) -> type[BaseModel]:
    """``{"code": "OK", "data": <record>}``, or a list of them with ``info`` when ``listed``."""
    name = schema_name(record)[: -len("Out")] + ("ListEnvelope" if listed else "Envelope")
    definitions: Dict[str, Any] = {"code": (Literal["OK"], ...)}
    if listed:
        item: Any = model(record)
        definitions["data"] = (List[item], ...)
        definitions["info"] = (ListInfo, ...)
    else:
        definitions["data"] = (model(record), ...)
    built: type[BaseModel] = create_model(name, **definitions)
    return built


# --- docs: the field tables of docs/*.md -------------------------------------------------------

def _type_text(field: Dict[str, Any]) -> str:
    kind: str = field["type"]
    if kind.endswith("{}"):
        text = f"object of {kind[:-2]}s"
    elif kind.endswith("[]"):
        item = kind[:-2]
        text = "list of strings" if item == "string" else f"list of {item} objects"
    else:
        text = {"uuid": "string (UUID)", "time": "float", "number": "float"}.get(kind, kind)
    return text + " or null" if field["nullable"] else text


def markdown_table(record: str) -> str:
    """The record's fields as a Markdown table: field, type, notes."""
    lines = ["| field | type | notes |", "|---|---|---|"]
    for field in fields(record):
        notes, values = field["description"], [f"`{value}`" for value in field["values"]]
        if len(values) > 1 and not all(value in notes for value in values):
            notes += "; one of " + ", ".join(values)
        lines.append(f"| `{field['name']}` | {_type_text(field)} | {notes} |")
    return "\n".join(lines)


#: A generated table sits between these two lines in a Markdown file.
_TABLE = re.compile(r"(<!-- fields: (\w+) -->\n)(.*?)(<!-- /fields -->)", re.DOTALL)


def render_docs(text: str) -> str:
    """The Markdown text with every marked field table written from the core's tables."""
    return _TABLE.sub(lambda m: m.group(1) + markdown_table(m.group(2)) + "\n" + m.group(4), text)


def main(paths: Sequence[str]) -> int:
    """Rewrite the field tables of the given Markdown files; print the ones that changed."""
    for path in map(Path, paths):
        text = path.read_text(encoding="utf-8")
        rendered = render_docs(text)
        if rendered != text:
            path.write_text(rendered, encoding="utf-8")
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

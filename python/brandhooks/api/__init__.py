"""The REST API of brandhooks (FastAPI): ``create_app(hub)`` gives the application.

Each route does three things: read and type-check its input, authorise the bearer token, and
call one Hub method. Everything else (validation of ids, topics and urls, storage, the
brand tree) lives in the C++ core so that C++ programs get the same behaviour.

Success: ``{"code": "OK", "data": ...}`` (lists add ``"info": {"count": N, "total": M}``).
Errors:  ``{"http": STATUS, "code": CODE, "message": TEXT}``.

app.py puts the application together; routers/ has one module per resource; access.py the
token and access dependencies; inputs.py reads request bodies; models.py describes them and
the answers; envelope.py answers errors; publish.py is the publish hot path.
"""

from .app import create_app

__all__ = ["create_app"]

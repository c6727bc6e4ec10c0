"""The inspection API under `/_emulator/`: list and clear what was received,
read the request log, inject faults, change the rate limit, reset.

No Bento auth: it is a local development tool bound to 127.0.0.1. It never
shows the secret key.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import RejectRule, parse_fault
from .inbox import inbox_page
from .state import EmulatorState
from .store import KINDS

__all__ = ["inspection_routes"]


def _bad(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return None


def inspection_routes(state: EmulatorState) -> list[Route]:
    """The `/_emulator/...` routes for `state`."""

    async def summary(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            # A browser gets the inbox page, which reads this same JSON.
            return inbox_page()
        return JSONResponse(state.summary())

    async def records(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return JSONResponse({"error": f"unknown kind {kind!r}"}, status_code=404)
        if request.method == "DELETE":
            state.store.clear(kind)
            return JSONResponse({"cleared": kind})
        meta = request.query_params.get("meta") in ("1", "true")
        return JSONResponse(state.store.list(kind, meta=meta))

    async def clear_data(request: Request) -> Response:
        state.store.clear()
        return JSONResponse({"cleared": list(KINDS)})

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            state.log.clear()
            return JSONResponse({"cleared": "requests"})
        return JSONResponse(state.log.entries())

    async def request_counts(request: Request) -> Response:
        return JSONResponse(state.log.counts())

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.faults.clear()
        elif request.method == "POST":
            try:
                rule = parse_fault(await _json_body(request))
            except ValueError as exc:
                return _bad(str(exc))
            if isinstance(rule, RejectRule):
                state.faults.add_reject(rule)
            else:
                state.faults.add(rule)
        return JSONResponse(state.faults.snapshot())

    async def rate_limit(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            doc = await _json_body(request)
            if not isinstance(doc, dict):
                return _bad("expected {requests, window_seconds}")
            limiter = state.limiter
            limit = doc.get("requests", limiter.limit)
            window = doc.get("window_seconds", limiter.window)
            if not all(
                isinstance(v, (int, float)) and not isinstance(v, bool)
                for v in (limit, window)
            ):
                return _bad("requests and window_seconds must be numbers")
            try:
                limiter.configure(int(limit), float(window))
            except ValueError as exc:
                return _bad(str(exc))
            if doc.get("reset_window"):
                limiter.reset()
        return JSONResponse(state.limiter.snapshot())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    return [
        Route("/_emulator/", summary, methods=["GET"]),
        Route("/_emulator", summary, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/data", clear_data, methods=["DELETE"]),
        Route("/_emulator/requests", requests, methods=["GET", "DELETE"]),
        Route("/_emulator/requests/counts", request_counts, methods=["GET"]),
        Route("/_emulator/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/rate-limit", rate_limit, methods=["GET", "PUT", "POST"]),
        Route("/_emulator/{kind}", records, methods=["GET", "DELETE"]),
    ]

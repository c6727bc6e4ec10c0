"""The inspection API under `/_emulator/`: list and clear what was received,
read the request log, inject faults, change the rate limit, reset.

No Bento auth: it is a local development tool bound to 127.0.0.1. It never
shows the secret key. `LocalOnly` (see `local_only`) guards it before these
routes run: known `Host` names only, no writes from other origins' pages,
JSON bodies only.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import RejectRule, parse_fault
from .guards import read_body
from .inbox import inbox_page
from .ratelimit import check_limit
from .state import EmulatorState
from .store import KINDS
from .validation import BodyError, parse_json

__all__ = ["inspection_routes"]


def _bad(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)


async def _json_body(request: Request, limit: int) -> Any:
    """The control body as JSON, `{}` when empty; `LocalOnly` has already
    refused any other Content-Type (415). The API's JSON rules and size cap
    apply.

    Raises:
        BodyError: 413 over `limit`, 400 when not JSON; answer with `_refused`.
    """
    try:
        raw = await read_body(request, limit)
    except ClientDisconnect:
        raise BodyError(400, {"error": "the body ended early"}) from None
    if not raw.strip():
        return {}
    return parse_json(raw)


def _refused(refused: BodyError) -> Response:
    return JSONResponse(refused.body, status_code=refused.status)


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
                rule = parse_fault(
                    await _json_body(request, state.settings.max_body_bytes)
                )
            except BodyError as refused:
                return _refused(refused)
            except ValueError as exc:
                return _bad(str(exc))
            if isinstance(rule, RejectRule):
                state.faults.add_reject(rule)
            else:
                state.faults.add(rule)
        return JSONResponse(state.faults.snapshot())

    async def rate_limit(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            try:
                doc = await _json_body(request, state.settings.max_body_bytes)
            except BodyError as refused:
                return _refused(refused)
            if not isinstance(doc, dict):
                return _bad("expected {requests, window_seconds}")
            limiter = state.limiter
            reset_window = doc.get("reset_window")
            try:
                # Every field is checked before anything changes.
                limit, window = check_limit(
                    doc.get("requests", limiter.limit),
                    doc.get("window_seconds", limiter.window),
                )
                if not isinstance(reset_window, (bool, type(None))):
                    raise ValueError("reset_window must be true or false")
                limiter.configure(limit, window)
            except ValueError as exc:
                return _bad(str(exc))
            if reset_window:
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

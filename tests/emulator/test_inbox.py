"""The inbox page over HTTP: served from package data with a strict CSP,
nothing from the internet, no secret, data only ever put in the DOM as text,
and email previews sandboxed with personalizations applied and escaped.
(`tests/browser` checks the same page in Chromium.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources

import httpx
import pytest

from bento_track.emulator import EmulatorServer
from bento_track.emulator.inbox import PAGE_CSP, PREVIEW_CSP, render_personalizations

from .conftest import bento_client

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # what browsers send
SECRET = "sk_inbox_test_secret"
EMAIL = {
    "to": "jesse@example.com",
    "from": "hello@example.com",
    "subject": "Hi {{ name }}",
    "html_body": "<p>Hi {{ name }}, {{ plan }} {{ missing }}</p><script>x()</script>",
    "personalizations": {"name": "<b>Tom & Jerry</b>", "plan": None},
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, secret_key=SECRET) as running:
        yield running


@pytest.fixture
def page(server: EmulatorServer) -> Iterator[httpx.Client]:
    """A plain client on the emulator's root (no Bento auth: the inbox needs none)."""
    server.inspect.reset()
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        yield client


def _asset_text(name: str) -> str:
    return (
        resources.files("bento_track.emulator")
        .joinpath("inbox")
        .joinpath(name)
        .read_text("utf-8")
    )


def _csp(header: str) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in header.split(";")
        if part.strip()
    }


def test_a_browser_gets_the_page_with_a_strict_csp(page: httpx.Client) -> None:
    for path in ("/_emulator/", "/_emulator"):
        response = page.get(path, headers=HTML)

        assert 200 == response.status_code
        assert response.headers["content-type"].startswith("text/html")
        assert "<h1>Bento emulator</h1>" in response.text
        assert PAGE_CSP == response.headers["content-security-policy"]
        assert "nosniff" == response.headers["x-content-type-options"]
        assert "no-store" == response.headers["cache-control"]
    csp = _csp(PAGE_CSP)
    assert "'none'" == csp["default-src"]
    assert "'self'" == csp["script-src"] == csp["style-src"] == csp["connect-src"]
    assert "'self'" == csp["frame-src"]
    assert "'none'" == csp["frame-ancestors"] == csp["form-action"] == csp["base-uri"]
    assert "unsafe" not in PAGE_CSP


def test_the_json_summary_is_unchanged_for_other_clients(page: httpx.Client) -> None:
    for headers in ({}, {"Accept": "application/json"}, {"Accept": "*/*"}):
        response = page.get("/_emulator/", headers=headers)

        assert response.headers["content-type"] == "application/json"
        assert {"site_uuid", "publishable_key", "counts", "requests"} <= set(
            response.json()
        )


def test_page_script_and_style_come_from_the_package(page: httpx.Client) -> None:
    html = page.get("/_emulator/", headers=HTML).text
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)

    assert sorted(sources) == [
        "/_emulator/inbox/inbox.css",
        "/_emulator/inbox/inbox.js",
    ]
    for path, kind in zip(
        sorted(sources), ("text/css", "text/javascript"), strict=True
    ):
        response = page.get(path)
        assert 200 == response.status_code
        assert response.headers["content-type"].startswith(kind)
        assert "nosniff" == response.headers["x-content-type-options"]
        assert response.text == _asset_text(path.rsplit("/", 1)[1])
    # No inline script or style: the CSP would block them, and data has no place there.
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script src="/_emulator/inbox/inbox.js" defer>'
    ]
    assert "<style" not in html and not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"<[^>]*\son\w+\s*=", html)  # no inline event handlers


def test_nothing_comes_from_the_internet() -> None:
    for name in ("index.html", "inbox.js", "inbox.css"):
        text = _asset_text(name)
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]", text, re.I), name
        assert "@import" not in text and "url(" not in text, name


def test_only_the_page_files_are_served(page: httpx.Client) -> None:
    for path in (
        "/_emulator/inbox/index.html",
        "/_emulator/inbox/inbox.py",
        "/_emulator/inbox/..%2Finbox.py",
        "/_emulator/inbox/..%2F..%2F__init__.py",
        "/_emulator/inbox/%2e%2e",
        "/_emulator/inbox/nope.js",
    ):
        assert 404 == page.get(path).status_code, path


def test_the_script_puts_data_in_the_dom_as_text_only() -> None:
    """The escaping approach: the page never parses data as HTML. Records are
    built with createElement and textContent; the only HTML rendered is an
    email's, inside a sandboxed iframe loading the preview URL."""
    script = _asset_text("inbox.js")
    code = re.sub(r"//[^\n]*", "", script)  # comments may name what is avoided

    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "srcdoc",
        "eval(",
        "new Function",
        "DOMParser",
        "createContextualFragment",
        'setTimeout("',
        "javascript:",
    ):
        assert sink not in code, sink
    assert "textContent" in code
    assert 'setAttribute("sandbox", "")' in code
    assert code.index('setAttribute("sandbox", "")') < code.index("frame.src =")
    assert "allow-" not in code


def test_the_secret_key_is_never_in_the_page_or_its_json(
    server: EmulatorServer, page: httpx.Client
) -> None:
    with bento_client(server) as api:
        api.post(
            "/batch/events", json={"events": [{"type": "t", "email": "a@example.com"}]}
        )
        api.post("/batch/emails", json={"emails": [EMAIL]})
    email_id = server.inspect.emails(meta=True)[0]["id"]
    paths = [
        "/_emulator/",
        "/_emulator/inbox/inbox.js",
        "/_emulator/inbox/inbox.css",
        "/_emulator/events?meta=1",
        "/_emulator/emails?meta=1",
        "/_emulator/subscribers",
        "/_emulator/requests",
        f"/_emulator/inbox/emails/{email_id}/preview",
    ]

    for path in paths:
        for headers in (HTML, {}):
            assert SECRET not in page.get(path, headers=headers).text, path


def test_email_preview_is_sandboxed_with_personalizations_escaped(
    server: EmulatorServer, page: httpx.Client
) -> None:
    with bento_client(server) as api:
        assert 200 == api.post("/batch/emails", json={"emails": [EMAIL]}).status_code
    [stored] = server.inspect.emails(meta=True)

    response = page.get(f"/_emulator/inbox/emails/{stored['id']}/preview")

    assert 200 == response.status_code
    assert response.headers["content-type"].startswith("text/html")
    assert PREVIEW_CSP == response.headers["content-security-policy"]
    assert "nosniff" == response.headers["x-content-type-options"]
    assert (
        "<p>Hi &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;,  {{ missing }}</p><script>x()</script>"
        == response.text
    )
    csp = _csp(PREVIEW_CSP)
    assert "" == csp["sandbox"]  # no allow-scripts, no allow-same-origin
    assert "'none'" == csp["default-src"]
    assert "script-src" not in csp
    assert [EMAIL] == server.inspect.emails()  # what was sent stays as sent
    assert 404 == page.get("/_emulator/inbox/emails/999999/preview").status_code
    assert 404 == page.get("/_emulator/inbox/emails/abc/preview").status_code


def test_render_personalizations() -> None:
    values = {"name": "Jesse", "vip": True, "n": 3, "gone": None, "a.b": "dotted"}

    assert "Hi Jesse" == render_personalizations("Hi {{name}}", values)
    assert "true 3  dotted" == render_personalizations(
        "{{ vip }} {{n}} {{ gone }} {{ a.b }}", values
    )
    assert "{{ other }} {{ name | upcase }}" == render_personalizations(
        "{{ other }} {{ name | upcase }}", values
    )
    assert "&lt;i&gt;" == render_personalizations("{{ x }}", {"x": "<i>"})
    assert "{{ name }}" == render_personalizations("{{ name }}", None)


def test_clear_endpoints_the_page_uses(
    server: EmulatorServer, page: httpx.Client
) -> None:
    with bento_client(server) as api:
        api.post(
            "/batch/events", json={"events": [{"type": "t", "email": "a@example.com"}]}
        )

    for path in ("/_emulator/events", "/_emulator/requests", "/_emulator/data"):
        assert 200 == page.delete(path).status_code, path
    assert [] == server.inspect.events() == server.inspect.requests()
    assert [] == server.inspect.subscribers()

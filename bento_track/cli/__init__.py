"""`bento-track`: the command line.

    bento-track emulator [--port 8025]      run the local Bento-compatible server
    bento-track demo                        see the library work end to end
    bento-track tags [--create NAME]        list (or create) tags
    bento-track send-event TYPE --email E   send one event
    bento-track send-email --to ... --from ... --subject ... --html ...
    bento-track import-subscribers FILE.csv [--encoding latin-1]
    bento-track sync-subscribers --from-csv FILE.csv   resumable, in the budget
    bento-track store sqlite:////path/bento.db   what a durable store holds

Commands that talk to Bento read `BENTO_SITE_UUID`, `BENTO_PUBLISHABLE_KEY`,
`BENTO_SECRET_KEY` and `BENTO_BASE_URL` (or the matching options).

Any error is one line on stderr, never a traceback, and never shows the secret
key or the Basic auth header. Exit status:

    0  done
    2  refused before anything was sent: a bad argument (JSON, email, number,
       tag name), an input file that cannot be read as given, or missing or
       malformed BENTO_* settings. Fix the command or environment and rerun.
    1  the command ran and failed: network, an error answer from Bento, or
       rows skipped or rejected. Some of the work may have been done.
  130  interrupted (Ctrl-C)

Usage errors raise `ConfigurationError` or `InvalidEventError` (the library's
own errors for bad input), so one `except` in `main` maps them to 2.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .._version import __version__
from ..config import ENV_VARS
from ..errors import BentoError, ConfigurationError, InvalidEventError

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "main"]

#: the command ran and failed (network, API error, rows skipped or rejected)
EXIT_FAILURE = 1
#: refused before sending anything: bad arguments, input or configuration
EXIT_USAGE = 2

# The options and variables a command needs before it can reach Bento.
_CREDENTIALS = (
    ("site_uuid", "--site-uuid"),
    ("publishable_key", "--publishable-key"),
    ("secret_key", "--secret-key"),
)


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (default: BENTO_* environment)")
    group.add_argument("--site-uuid", help="site uuid (BENTO_SITE_UUID)")
    group.add_argument(
        "--publishable-key", help="publishable key (BENTO_PUBLISHABLE_KEY)"
    )
    group.add_argument(
        "--secret-key",
        help="secret key (BENTO_SECRET_KEY; prefer the variable: options show in `ps`)",
    )
    group.add_argument("--base-url", help="API base URL (BENTO_BASE_URL)")


def _setting(args: argparse.Namespace, name: str, env: Mapping[str, str]) -> str:
    """What `Config.resolve` will use: the option when given, else the variable."""
    value = getattr(args, name, None)
    return (value if value is not None else env.get(ENV_VARS[name])) or ""


def _join(words: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return " and ".join(
        [", ".join(words[:-1]), words[-1]] if len(words) > 1 else list(words)
    )


def _api(args: argparse.Namespace) -> Any:
    from ..api import BentoAPI

    # `Config.resolve` names only the first missing setting, in library terms
    # (`site_uuid=...`); a shell user wants every missing variable at once.
    missing = [
        (ENV_VARS[name], option)
        for name, option in _CREDENTIALS
        if not _setting(args, name, os.environ)
    ]
    if missing:
        one = len(missing) == 1
        raise ConfigurationError(
            f"{_join([var for var, _ in missing])} {'is' if one else 'are'} not set: "
            f"export {'it' if one else 'them'} (Bento: Settings -> API Keys) or "
            f"pass {_join([option for _, option in missing])}"
        )
    return BentoAPI(
        site_uuid=args.site_uuid,
        publishable_key=args.publishable_key,
        secret_key=args.secret_key,
        base_url=args.base_url,
    )


def _key_values(pairs: Sequence[str], option: str) -> dict[str, Any]:
    """`k=v` pairs; values that parse as JSON scalars keep their type."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"{option} expects key=value, got {pair!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out[key] = value if isinstance(value, (str, int, float, bool)) else raw
    return out


def _json_object(raw: str, option: str) -> dict[str, Any]:
    """A JSON object from an option, or a usage error saying what it got."""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean"}.get(
            type(value), "null" if value is None else "a number"
        )
        raise ConfigurationError(
            f'{option} must be a JSON object such as \'{{"source": "cli"}}\', not {kind}'
        )
    return value


def cmd_tags(args: argparse.Namespace) -> int:
    """`bento-track tags`: print each tag's id and name, or with `--create`
    create one and say whether it already existed. Returns the exit status."""
    name = None
    if args.create is not None:
        # Checked here, before any request: an empty name used to fall through
        # to listing the tags, as if --create had not been given.
        name = args.create.strip()
        if not name:
            raise ConfigurationError("--create needs a tag name, got an empty one")
    with _api(args) as api:
        if name is not None:
            # The API answers 201 with the tag whether or not it was new, so
            # the list before the call is what tells the two apart.
            before = api.get_tags()
            tag = api.create_tag(name)
            existed = any(
                t.name == tag.name or (tag.id and t.id == tag.id) for t in before
            )
            if existed:
                print(f"tag {tag.name!r} already exists (id {tag.id}); nothing created")
            else:
                print(f"created tag {tag.name!r} (id {tag.id})")
            return 0
        tags = api.get_tags()
    if not tags:
        print("no tags")
    for tag in tags:
        print(f"{tag.id}\t{tag.name}")
    return 0


def cmd_send_event(args: argparse.Namespace) -> int:
    """`bento-track send-event`: validate and send one event in a batch
    request; the exit status is 1 if Bento reports it failed. A malformed
    event or `--details` raises a usage error before anything is sent."""
    from ..events import Event

    # `is not None`: `--details ''` is a mistake to report, not "no details".
    details = None if args.details is None else _json_object(args.details, "--details")
    # Event.build raises InvalidEventError naming the field (a usage error, 2),
    # where a lenient Client.track() would drop the event and return None.
    event = Event.build(
        args.type,
        email=args.email,
        fields=_key_values(args.field, "--field") or None,
        details=details,
    )
    with _api(args) as api:
        result = api.batch_events([event])
    print(
        f"sent {event.type!r} for {event.email}: accepted {result.results}, failed {result.failed}"
    )
    return 0 if result.failed == 0 else EXIT_FAILURE


def cmd_send_email(args: argparse.Namespace) -> int:
    """`bento-track send-email`: send one email (with `--var` personalization)
    and print how many Bento queued. Returns the exit status."""
    from ..models import Email

    email = Email(
        to=args.to,
        from_=args.from_,
        subject=args.subject,
        html_body=args.html,
        transactional=args.transactional,
        personalizations=_key_values(args.var, "--var") or None,
    )
    with _api(args) as api:
        result = api.send_emails([email])
    print(f"queued {result.results} email(s) to {email.to}")
    return 0


def cmd_import_subscribers(args: argparse.Namespace) -> int:
    """`bento-track import-subscribers`: import a CSV file (see `import_csv`);
    the exit status is 1 if any row was skipped, unsent or failed."""
    from .csv_import import import_csv

    with _api(args) as api:
        summary = import_csv(
            api, args.file, batch_size=args.batch_size, encoding=args.encoding
        )
    return 0 if summary.ok else EXIT_FAILURE


def cmd_demo(args: argparse.Namespace) -> int:
    """`bento-track demo`: check `--events` (0-10000), then `run_demo`."""
    from .demo import run_demo

    if not 0 <= args.events <= 10_000:
        # More than the client's default queue bound would drop events and
        # make the demo look broken.
        raise ConfigurationError(f"--events must be 0-10000, not {args.events}")
    return run_demo(use_emulator=args.emulator, events=args.events)


def cmd_emulator(args: argparse.Namespace) -> int:
    """`bento-track emulator`: run the local server until stopped. A server
    that cannot start (port in use) gives exit status 1, not uvicorn's own."""
    from ..emulator.cli import run

    if not 0 <= args.port <= 65535:
        raise ConfigurationError(f"--port must be 0-65535, not {args.port}")
    try:
        return run(args)
    except SystemExit as exc:
        # uvicorn exits 3 when it cannot bind (port in use, unknown host) after
        # logging why; keep this command's statuses to the documented 0/1/2.
        if exc.code in (None, 0, EXIT_FAILURE, EXIT_USAGE):
            raise
        return EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    """The `bento-track` argument parser: one subcommand each, whose `func`
    default is the `cmd_*` function that runs it."""
    parser = argparse.ArgumentParser(
        prog="bento-track",
        description="Bento events from Python apps: tools and a local Bento emulator.",
        epilog="Exit status: 0 done; 2 refused before sending anything (bad "
        "arguments, unreadable input, missing or malformed BENTO_* settings); "
        "1 failed while running (network, Bento's answer, rows skipped).",
    )
    parser.add_argument(
        "--version", action="version", version=f"bento-track {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("emulator", help="run the local Bento-compatible API server")
    try:
        from ..emulator.cli import add_arguments
    except ImportError:  # pragma: no cover - the emulator ships with the package
        pass
    else:
        add_arguments(p)
    p.set_defaults(func=cmd_emulator)

    p = sub.add_parser("demo", help="send sample data and show what was received")
    p.add_argument(
        "--emulator",
        action="store_true",
        help="use the embedded emulator even when Bento credentials are set",
    )
    p.add_argument(
        "--events", type=int, default=25, help="events to track (0-10000, default 25)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("tags", help="list tags, or create one")
    p.add_argument(
        "--create", metavar="NAME", help="create this tag (says if it existed)"
    )
    _add_connection_options(p)
    p.set_defaults(func=cmd_tags)

    p = sub.add_parser("send-event", help="send one event")
    p.add_argument("type", help="event type, e.g. account.signup or $purchase")
    p.add_argument("--email", required=True, help="the subscriber's email")
    p.add_argument("--field", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--details", metavar="JSON", help="event details as a JSON object")
    _add_connection_options(p)
    p.set_defaults(func=cmd_send_event)

    p = sub.add_parser("send-email", help="send one transactional email")
    p.add_argument("--to", required=True)
    p.add_argument(
        "--from", dest="from_", required=True, help="an author set up in Bento"
    )
    p.add_argument("--subject", required=True)
    p.add_argument("--html", required=True, help="the HTML body (Liquid allowed)")
    p.add_argument(
        "--transactional", action="store_true", help="send even if unsubscribed"
    )
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="personalization",
    )
    _add_connection_options(p)
    p.set_defaults(func=cmd_send_email)

    p = sub.add_parser("import-subscribers", help="import subscribers from a CSV file")
    p.add_argument("file", help="CSV with a header row and an 'email' column")
    p.add_argument(
        "--batch-size", type=int, default=1000, help="rows per request (1-1000)"
    )
    p.add_argument(
        "--encoding",
        default="utf-8",
        help="the file's text encoding (default utf-8, a BOM is skipped; "
        "e.g. latin-1 or cp1252 for files saved by older Excel)",
    )
    _add_connection_options(p)
    p.set_defaults(func=cmd_import_subscribers)

    from .store import add_store_command
    from .sync_subscribers import add_sync_command

    add_store_command(sub)
    add_sync_command(sub, _add_connection_options)
    return parser


def _secrets(args: argparse.Namespace) -> list[str]:
    """What must never reach the terminal: the secret keys this run may know
    (option and variable) and the Basic credential built from each, longest
    first so a credential is replaced whole before the key inside it."""
    publishable = _setting(args, "publishable_key", os.environ)
    found: set[str] = set()
    for secret in (
        getattr(args, "secret_key", None),
        os.environ.get(ENV_VARS["secret_key"]),
    ):
        if secret:
            found.add(secret)
            found.add(base64.b64encode(f"{publishable}:{secret}".encode()).decode())
    return sorted(found, key=len, reverse=True)


def _error(args: argparse.Namespace, exc: BaseException, status: int) -> int:
    # One line: an API error body or an OS message may hold line breaks.
    message = re.sub(r"\s*[\r\n]+\s*", " ", str(exc)).strip() or type(exc).__name__
    # The library redacts its own messages, but a message may quote a value
    # the user typed (a URL, a file name) that embeds the key: redact again.
    for secret in _secrets(args):
        message = message.replace(secret, "***")
    print(f"bento-track: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (`argv`, default `sys.argv[1:]`) and return the
    exit status: the library's usage errors give 2, other Bento and OS errors
    1, each as one redacted line on stderr. argparse's own usage errors and
    `--help` exit via `SystemExit`."""
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse's own usage errors exit 2 here
    try:
        code: int = args.func(args)
    except (ConfigurationError, InvalidEventError) as exc:
        return _error(args, exc, EXIT_USAGE)
    except (BentoError, OSError) as exc:
        return _error(args, exc, EXIT_FAILURE)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

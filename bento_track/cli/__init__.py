"""`bento-track`: the command line.

    bento-track emulator [--port 8025]      run the local Bento-compatible server
    bento-track demo                        see the library work end to end
    bento-track tags [--create NAME]        list (or create) tags
    bento-track send-event TYPE --email E   send one event
    bento-track send-email --to ... --from ... --subject ... --html ...
    bento-track import-subscribers FILE.csv

Commands that talk to Bento read `BENTO_SITE_UUID`, `BENTO_PUBLISHABLE_KEY`,
`BENTO_SECRET_KEY` and `BENTO_BASE_URL` (or the matching options). Any error is
one line on stderr and a non-zero exit status: 2 for usage and configuration,
1 for everything else.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..errors import BentoError, ConfigurationError

__all__ = ["main"]


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


def _api(args: argparse.Namespace) -> Any:
    from ..api import BentoAPI

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


def cmd_tags(args: argparse.Namespace) -> int:
    with _api(args) as api:
        if args.create:
            tag = api.create_tag(args.create)
            print(f"created tag {tag.name!r} (id {tag.id})")
            return 0
        tags = api.get_tags()
    if not tags:
        print("no tags")
    for tag in tags:
        print(f"{tag.id}\t{tag.name}")
    return 0


def cmd_send_event(args: argparse.Namespace) -> int:
    from ..events import Event

    details = None
    if args.details:
        try:
            details = json.loads(args.details)
        except ValueError as exc:
            raise ConfigurationError(f"--details is not valid JSON: {exc}") from None
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
    return 0 if result.failed == 0 else 1


def cmd_send_email(args: argparse.Namespace) -> int:
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
    print(f"queued {result.results} email(s) to {args.to}")
    return 0


def cmd_import_subscribers(args: argparse.Namespace) -> int:
    from .csv_import import import_csv

    with _api(args) as api:
        summary = import_csv(api, args.file, batch_size=args.batch_size)
    return 0 if summary.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(use_emulator=args.emulator, events=args.events)


def cmd_emulator(args: argparse.Namespace) -> int:
    from ..emulator.cli import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bento-track",
        description="Bento events from Python apps: tools and a local Bento emulator.",
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
        "--events", type=int, default=25, help="events to track (default 25)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("tags", help="list tags, or create one")
    p.add_argument("--create", metavar="NAME", help="create this tag")
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
    _add_connection_options(p)
    p.set_defaults(func=cmd_import_subscribers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigurationError as exc:
        print(f"bento-track: error: {exc}", file=sys.stderr)
        return 2
    except (BentoError, OSError) as exc:
        print(f"bento-track: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

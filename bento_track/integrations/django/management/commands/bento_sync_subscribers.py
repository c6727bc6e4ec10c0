"""`python manage.py bento_sync_subscribers`: every user to Bento's
subscribers, as `BENTO_TRACK["subscribers"]` maps them (the defaults when
it is not set), within the default client's request budget.

    python manage.py bento_sync_subscribers [--dry-run] [--since 2026-01-01]
        [--checkpoint bento-sync-subscribers.json] [--restart]

Users go in primary-key order, in batches of up to 1,000, one request
each, each confirmed by Bento before the next, within the default client's
request budget (`bento_track.sync_subscribers`): with the app's SQLite or
Redis store in `BENTO_TRACK` (`"store": ...`, or `BENTO_STORE`), the budget
(and any 429 pause) is the running app's too, so the backfill never pushes
the app's events into 429s. Users without an email, and inactive ones
(`is_active`, or the `active` callable), are left out.

Resuming: after each confirmed batch the checkpoint file records the last
user's primary key; run the command again after a crash or Ctrl-C and it
continues with the next user (at most the one unconfirmed batch is sent
again). The file is deleted when the sync finishes; `--restart` ignores it.

`--since DATE` syncs only users whose timestamp (`updated_field` in the
setting, else the model's `updated_at`, `modified`, ...) is on or after
DATE (`2026-05-01` or `2026-05-01T12:00:00+02:00`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import dateparse, timezone

from .....errors import ConfigurationError
from .....sync import MAX_BATCH, MODES, SyncCheckpoint, sync_subscribers
from ...options import load_options
from ...subscribers import SubscriberSync, current, load_config, user_queryset

__all__ = ["DEFAULT_CHECKPOINT", "Command"]

#: the checkpoint file, in the current directory, unless --checkpoint names one
DEFAULT_CHECKPOINT = "bento-sync-subscribers.json"


class _Raw:
    """A Django `OutputWrapper` as a plain stream: no added line ends, no
    colour (the progress bar draws its own line)."""

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, style_func=lambda s: s, ending="")

    def flush(self) -> None:
        self._wrapper.flush()

    def isatty(self) -> bool:
        return bool(self._wrapper.isatty())


def parse_since(value: str) -> dt.datetime:
    """`--since`: a date or a datetime; a naive one is in the current time
    zone.

    Raises:
        CommandError: neither a date nor a datetime.
    """
    when: dt.datetime | None
    try:
        when = dateparse.parse_datetime(value)
        if when is None:
            day = dateparse.parse_date(value)
            if day is not None:
                when = dt.datetime(day.year, day.month, day.day)
    except ValueError:
        when = None
    if when is None:
        raise CommandError(
            f"--since {value!r}: not a date (2026-05-01) or a datetime "
            "(2026-05-01T12:00:00+02:00)"
        )
    if settings.USE_TZ and timezone.is_naive(when):
        when = timezone.make_aware(when)
    return when


def _position(pk: Any) -> int | str:
    return pk if type(pk) is int else str(pk)


class Command(BaseCommand):  # type: ignore[misc]
    """The command (see the module docstring)."""

    help = (
        "Sync every user to Bento's subscribers: batches of 1,000 within the "
        "app's request budget, resumable."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """The command's options."""
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="count the users and show three rows as Bento would get them; "
            "send nothing",
        )
        parser.add_argument(
            "--since",
            metavar="DATE",
            help="only users updated on or after DATE (needs a timestamp field)",
        )
        parser.add_argument(
            "--checkpoint",
            metavar="PATH",
            default=DEFAULT_CHECKPOINT,
            help=f"where the sync records its progress ({DEFAULT_CHECKPOINT})",
        )
        parser.add_argument(
            "--restart",
            action="store_true",
            help="ignore the checkpoint and start at the first user",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=MAX_BATCH,
            help=f"users per request (1-{MAX_BATCH})",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=120.0,
            help="seconds to wait for Bento to confirm one batch (120)",
        )
        parser.add_argument(
            "--progress",
            choices=MODES,
            default="auto",
            help="a bar on a terminal, plain lines otherwise (auto)",
        )
        parser.add_argument(
            "--budget-share",
            type=float,
            default=0.8,
            help="the most of each budget window the sync takes; the rest is the "
            "app's (0.01-1, default 0.8)",
        )
        parser.add_argument(
            "--database", default=None, help="the database alias to read users from"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the sync; a stop before the end is a `CommandError` (exit 1)
        saying where the checkpoint stands."""
        config = current()
        if config is None:
            config = load_config(load_options().subscribers or True)
        query = user_queryset(config, options["database"])
        label = config.model._meta.label
        since = None
        if options["since"]:
            since = parse_since(options["since"])
            if config.updated_field is None:
                raise CommandError(
                    f"--since needs a timestamp field: {label} has none of updated_at, "
                    "modified, ...; set BENTO_TRACK['subscribers']['updated_field']"
                )
            query = query.filter(**{f"{config.updated_field}__gte": since})
        if config.active is None and _has_field(config, "is_active"):
            query = query.filter(is_active=True)
        source = (
            f"django {label} db={options['database'] or 'default'} "
            f"since={since.isoformat() if since else '-'}"
        )
        try:
            checkpoint = SyncCheckpoint(
                options["checkpoint"], source, restart=options["restart"]
            )
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        total = query.count()
        if checkpoint.position is not None:
            query = query.filter(pk__gt=checkpoint.position)
        self.stdout.write(
            f"{total:,} users of {label} to sync"
            + (f" (updated since {since.isoformat()})" if since else "")
        )
        try:
            result = sync_subscribers(
                _rows(config, query),
                checkpoint=checkpoint,
                source=source,
                total=total,
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
                progress=options["progress"],
                stream=_Raw(self.stderr),
                timeout=options["timeout"],
                budget_share=options["budget_share"],
            )
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        for number, reason in result.invalid_rows:
            self.stderr.write(f"user {number}: skipped: {reason}")
        self.stdout.write(result.summary())
        for sample in result.samples:
            self.stdout.write(f"sample: {json.dumps(sample, ensure_ascii=False)}")
        if not result.complete:
            raise CommandError(result.error or "the sync stopped early")


def _has_field(config: SubscriberSync, name: str) -> bool:
    return any(f.name == name for f in config.model._meta.get_fields())


def _rows(config: SubscriberSync, query: Any) -> Any:
    """`sync_subscribers` rows of the users, each with its primary key as
    the position; inactive users (by the `active` callable) left out."""
    for user in query.iterator(chunk_size=2000):
        if config.active is not None and not config.is_active(user):
            continue
        row = config.row(user)
        if row is None:  # an address that is not one: reported by the sync
            row = {"email": getattr(user, config.email_field, None)}
        row["position"] = _position(user.pk)
        yield row

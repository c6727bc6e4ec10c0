"""What the emulator accepted, in SQLite (a file, or `:memory:`).

One connection shared by the server thread and any in-process caller
(`check_same_thread=False`), serialised by a lock. Records are JSON columns:
the emulator keeps exactly what the client sent, plus when it arrived and
in which request, so tests can compare payloads byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["KINDS", "AccountData"]

#: The record kinds the inspection API lists and clears.
KINDS = ("events", "subscribers", "emails", "commands", "tags", "fields")
_LOGS = ("events", "emails", "commands")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, request_id INTEGER, received_at TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS emails (
    id INTEGER PRIMARY KEY, request_id INTEGER, received_at TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY, request_id INTEGER, received_at TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS subscribers (
    id INTEGER PRIMARY KEY, email TEXT UNIQUE, uuid TEXT UNIQUE, data TEXT);
CREATE TABLE IF NOT EXISTS tags (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE, created_at TEXT);
CREATE TABLE IF NOT EXISTS fields (
    id INTEGER PRIMARY KEY, key TEXT UNIQUE, name TEXT, created_at TEXT);
"""
_IN_CHUNK = 500  # stays under SQLite's host-parameter limit


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _key(email: str) -> str:
    return email.strip().lower()


def _tag_names(value: Any) -> list[str]:
    """Tags as Bento takes them: "a,b" or ["a", "b"]."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return [t.strip() for t in value if isinstance(t, str) and t.strip()]


class AccountData:
    """What the emulated account holds: events, subscribers, emails,
    commands, tags and fields (named apart from the library's event stores,
    `bento_track.stores`, which hold events waiting to be sent).

    Args:
        path: an SQLite file (kept across restarts) or `":memory:"`.
    """

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database; the store is unusable afterwards."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- logs: events, emails, commands ----------------------------------------

    def _append(
        self, db: sqlite3.Connection, kind: str, items: list[Any], request_id: int
    ) -> None:
        received = _now()
        db.executemany(
            f"INSERT INTO {kind} (request_id, received_at, data) VALUES (?, ?, ?)",
            [(request_id, received, _dumps(item)) for item in items],
        )

    def add_events(self, events: list[dict[str, Any]], request_id: int) -> None:
        """Store accepted events and apply them to subscribers, as Bento does:
        the subscriber is created on its first event, `fields` are merged, and
        `$tag`, `$remove_tag`, `$subscribe`, `$unsubscribe` take effect."""
        with self._tx() as db:
            self._append(db, "events", events, request_id)
            people = self._load(db, (e["email"] for e in events))
            seen_tags: list[str] = []
            for event in events:
                person = self._touch(people, event["email"])
                person["fields"].update(event.get("fields") or {})
                kind = event["type"]
                details = event.get("details") or {}
                tag = details.get("tag") if isinstance(details, dict) else None
                if kind == "$tag" and isinstance(tag, str):
                    self._tag(person, [tag])
                    seen_tags.append(tag)
                elif kind == "$remove_tag" and isinstance(tag, str):
                    self._untag(person, [tag])
                elif kind == "$subscribe":
                    person["unsubscribed_at"] = None
                elif kind == "$unsubscribe":
                    person["unsubscribed_at"] = person["unsubscribed_at"] or _now()
            self._save(db, people.values(), seen_tags)

    def add_emails(self, emails: list[dict[str, Any]], request_id: int) -> None:
        """Log accepted emails, tagged with the request they came in; nothing
        is sent."""
        with self._tx() as db:
            self._append(db, "emails", emails, request_id)

    def add_commands(self, commands: list[dict[str, Any]], request_id: int) -> None:
        """Log the commands and apply them to the subscribers (created if missing)."""
        with self._tx() as db:
            self._append(db, "commands", commands, request_id)
            for command in commands:
                self._command(db, command)

    def _command(self, db: sqlite3.Connection, command: dict[str, Any]) -> None:
        name = command["command"]
        query: Any = command.get("query")
        if name == "change_email":
            self._change_email(db, command["email"], str(query))
            return
        people = self._load(db, [command["email"]])
        person = self._touch(people, command["email"])
        seen_tags: list[str] = []
        if name in ("add_tag", "add_tag_via_event"):
            self._tag(person, [str(query)])
            seen_tags.append(str(query))
        elif name == "remove_tag":
            self._untag(person, [str(query)])
        elif name == "add_field":
            person["fields"][query["key"]] = query["value"]
        elif name == "remove_field":
            person["fields"].pop(str(query), None)
        elif name == "subscribe":
            person["unsubscribed_at"] = None
        elif name == "unsubscribe":
            person["unsubscribed_at"] = person["unsubscribed_at"] or _now()
        self._save(db, people.values(), seen_tags)

    def _change_email(self, db: sqlite3.Connection, old: str, new: str) -> None:
        """Move the subscriber at `old` to `new` (created if missing, like
        every command's subscriber), keeping its uuid, tags and fields.

        The same address (in any case) is a no-op. An address another
        subscriber already has changes nothing either: Bento keeps one
        subscriber per address and does not document merging, and a
        command is only queued (the 200 counts commands, not changes), so
        the conflicting change fails quietly there and both subscribers
        stay as they were. Overwriting or merging the other subscriber
        here would hide data loss the real service does not cause.
        """
        old_key, new_key = _key(old), _key(new)
        if old_key == new_key:
            return
        people = self._load(db, [old, new])
        if new_key in people:
            return
        existed = old_key in people
        person = self._touch(people, old)
        person["email"] = new_key
        if existed:
            # An UPDATE keeps the row, so the subscriber's numeric id stays.
            db.execute(
                "UPDATE subscribers SET email = ?, data = ? WHERE email = ?",
                (new_key, _dumps(person), old_key),
            )
        else:
            self._save(db, [person])

    # -- subscribers -------------------------------------------------------------

    def _load(
        self, db: sqlite3.Connection, emails: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(_key(e) for e in emails))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for email, data in db.execute(
                f"SELECT email, data FROM subscribers WHERE email IN ({marks})", chunk
            ):
                found[email] = json.loads(data)
        return found

    @classmethod
    def _touch(cls, people: dict[str, dict[str, Any]], email: str) -> dict[str, Any]:
        """`_person`, about to change: its `updated_at` is now (the inbox
        shows when each subscriber last changed)."""
        person = cls._person(people, email)
        person["updated_at"] = _now()
        return person

    @staticmethod
    def _person(people: dict[str, dict[str, Any]], email: str) -> dict[str, Any]:
        key = _key(email)
        person = people.get(key)
        if person is None:
            now = _now()
            person = people[key] = {
                "uuid": str(uuid.uuid4()),
                "email": key,
                "first_name": None,
                "last_name": None,
                "fields": {},
                "tags": [],
                "unsubscribed_at": None,
                "created_at": now,
                "updated_at": now,
            }
        return person

    @staticmethod
    def _tag(person: dict[str, Any], names: list[str]) -> None:
        person["tags"].extend(n for n in names if n not in person["tags"])

    @staticmethod
    def _untag(person: dict[str, Any], names: list[str]) -> None:
        person["tags"] = [t for t in person["tags"] if t not in names]

    def _save(
        self,
        db: sqlite3.Connection,
        people: Iterable[dict[str, Any]],
        seen_tags: Iterable[str] = (),
    ) -> None:
        """Write `people` back; every tag they hold or that was just applied
        exists afterwards (Bento creates tags on first use)."""
        rows = list(people)
        db.executemany(
            "INSERT INTO subscribers (email, uuid, data) VALUES (?, ?, ?) "
            "ON CONFLICT(email) DO UPDATE SET data = excluded.data",
            [(p["email"], p["uuid"], _dumps(p)) for p in rows],
        )
        names = list(dict.fromkeys([*seen_tags, *(t for p in rows for t in p["tags"])]))
        if names:
            created = _now()
            db.executemany(
                "INSERT OR IGNORE INTO tags (name, created_at) VALUES (?, ?)",
                [(n, created) for n in names],
            )

    def upsert_subscribers(self, rows: list[dict[str, Any]]) -> None:
        """`/batch/subscribers`: create or update; unknown keys become fields."""
        with self._tx() as db:
            people = self._load(db, (r["email"] for r in rows))
            for row in rows:
                person = self._touch(people, row["email"])
                for key, value in row.items():
                    if key == "email":
                        continue
                    if key in ("first_name", "last_name"):
                        person[key] = value
                    elif key == "tags":
                        self._tag(person, _tag_names(value))
                    elif key == "remove_tags":
                        self._untag(person, _tag_names(value))
                    else:
                        person["fields"][key] = value
            self._save(db, people.values())

    def create_subscriber(self, email: str) -> dict[str, Any]:
        """Create a subscriber for `email` unless one exists; return it as
        `find_subscriber` shows it."""
        with self._tx() as db:
            people = self._load(db, [email])
            self._person(people, email)
            self._save(db, people.values())
        found = self.find_subscriber(email=email)
        assert found is not None
        return found

    def find_subscriber(
        self, *, email: str | None = None, uuid: str | None = None
    ) -> dict[str, Any] | None:
        """A subscriber as Bento's `/fetch/subscribers` shows it, or None."""
        with self._lock:
            if email is not None:
                row = self._db.execute(
                    "SELECT id, data FROM subscribers WHERE email = ?", (_key(email),)
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT id, data FROM subscribers WHERE uuid = ?", (uuid,)
                ).fetchone()
            if row is None:
                return None
            person = json.loads(row[1])
            tag_ids = self._tag_ids(person["tags"])
        return {
            "id": str(row[0]),
            "type": "visitors",
            "attributes": {
                "uuid": person["uuid"],
                "email": person["email"],
                "fields": person["fields"],
                "cached_tag_ids": tag_ids,
                "unsubscribed_at": person["unsubscribed_at"],
            },
        }

    def _tag_ids(self, names: list[str]) -> list[str]:
        if not names:
            return []
        marks = ",".join("?" * len(names))
        rows = self._db.execute(
            f"SELECT id FROM tags WHERE name IN ({marks}) ORDER BY id", names
        )
        return [str(r[0]) for r in rows]

    # -- tags and fields ---------------------------------------------------------

    def create_tag(self, name: str, site_id: str) -> dict[str, Any]:
        """Create the tag `name` unless it exists; return it as `tags` shows it."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO tags (name, created_at) VALUES (?, ?)",
                (name, _now()),
            )
        return next(t for t in self.tags(site_id) if t["attributes"]["name"] == name)

    def tags(self, site_id: str) -> list[dict[str, Any]]:
        """Every tag, oldest first, as `/fetch/tags` resources naming `site_id`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, created_at FROM tags ORDER BY id"
            ).fetchall()
        return [
            {
                "id": str(id_),
                "type": "tags",
                "attributes": {
                    "name": name,
                    "created_at": created,
                    "discarded_at": None,
                    "site_id": site_id,
                },
            }
            for id_, name, created in rows
        ]

    def create_field(self, key: str) -> dict[str, Any]:
        """Create the custom field `key` (its name: `key` in title case)
        unless it exists; return it as `fields` shows it."""
        name = key.replace("_", " ").strip().title() or key
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO fields (key, name, created_at) VALUES (?, ?, ?)",
                (key, name, _now()),
            )
        return next(f for f in self.fields() if f["attributes"]["key"] == key)

    def fields(self) -> list[dict[str, Any]]:
        """Every custom field, oldest first, as `/fetch/fields` resources."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, key, name, created_at FROM fields ORDER BY id"
            ).fetchall()
        return [
            {
                "id": str(id_),
                "type": "visitors-fields",
                "attributes": {
                    "name": name,
                    "key": key,
                    "whitelisted": None,
                    "created_at": created,
                },
            }
            for id_, key, name, created in rows
        ]

    # -- inspection --------------------------------------------------------------

    def list(self, kind: str, meta: bool = False) -> list[dict[str, Any]]:
        """Every record of `kind`, oldest first.

        Args:
            kind: one of `KINDS`.
            meta: for events, emails and commands, wrap each record as
                `{"id", "request_id", "received_at", "data"}`.
        """
        if kind not in KINDS:
            raise KeyError(kind)
        if kind == "tags":
            return self.tags("")
        if kind == "fields":
            return self.fields()
        with self._lock:
            if kind == "subscribers":
                people = self._db.execute("SELECT data FROM subscribers ORDER BY id")
                return [json.loads(r[0]) for r in people]
            rows = self._db.execute(
                f"SELECT id, request_id, received_at, data FROM {kind} ORDER BY id"
            ).fetchall()
        if not meta:
            return [json.loads(r[3]) for r in rows]
        return [
            {
                "id": r[0],
                "request_id": r[1],
                "received_at": r[2],
                "data": json.loads(r[3]),
            }
            for r in rows
        ]

    def count(self, kind: str) -> int:
        """How many records of `kind` (one of `KINDS`) are held; `KeyError`
        for any other kind."""
        if kind not in KINDS:
            raise KeyError(kind)
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM {kind}").fetchone()
        return int(row[0])

    def clear(self, kind: str | None = None) -> None:
        """Delete every record of `kind`, or of every kind."""
        kinds = KINDS if kind is None else (kind,)
        for k in kinds:
            if k not in KINDS:
                raise KeyError(k)
        with self._tx() as db:
            for k in kinds:
                db.execute(f"DELETE FROM {k}")

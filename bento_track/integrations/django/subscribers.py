"""`BENTO_TRACK["subscribers"]`: Bento's subscribers follow Django's users.

```python
BENTO_TRACK = {
    "subscribers": {
        "model": "auth.User",              # default: settings.AUTH_USER_MODEL
        "fields": {                         # Bento field -> attribute path
            "first_name": "first_name",
            "last_name": "last_name",
            "plan": "profile.plan",         # through a related object
        },
        "tags": "myapp.bento.tags_for",     # user -> tags to add (or None)
        "active": "myapp.bento.is_active",  # user -> bool (default: is_active)
        "updated_field": "updated_at",      # for bento_sync_subscribers --since
    },
}
```

`"subscribers": True` takes every default (the fields: `first_name` and
`last_name`, when the model has them).

What is sent, always after the transaction commits (`on_commit`; a save in
a transaction that rolls back sends nothing), through the default client's
pipeline (batched, merged per email, within the request budget):

- a user saved (created or changed) while active: an upsert of their email,
  with the mapped fields and the `tags` callable's tags. Bento's import
  starts no automation.
- a changed email: Bento's `change_email` (old to new), then the upsert, so
  Bento keeps one subscriber, with its history, at the new address.
- a user who stops being active (`active` turns false on a save), or is
  deleted: Bento's `unsubscribe`. Chosen over doing nothing because Bento
  has no delete, and someone whose account is closed or disabled should get
  no more mail; their history stays in Bento. A user who becomes active
  again is upserted but stays unsubscribed: subscribing again is the
  person's choice, not a save's.
- a related object reached through a one-to-one relation (a profile) and
  saved on its own: the user's upsert. A foreign key's object (a company
  renamed) reaches its users at their next save, or the next backfill.

Paths are attributes, one step at a time (a method such as
`get_full_name` is called). A missing related object on the way (no
profile yet, a null foreign key) skips that field; a value Bento cannot
hold (a list, a model) is skipped and logged.

Not seen by signals: `QuerySet.update()`, `bulk_create()`, many-to-many
changes, fixtures (`loaddata` saves raw). Call `sync_user(user)` after
them, or run `python manage.py bento_sync_subscribers --since ...`. A save
whose `update_fields` is only `last_login` (Django's own, at each login)
sends nothing.

Cost per user save: one query before it (the stored email and active
state) and one after the commit (the committed user and its related
objects). Nothing here ever raises into the app: trouble is logged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import (
    FieldDoesNotExist,
    ImproperlyConfigured,
    ObjectDoesNotExist,
)
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.utils.module_loading import import_string

from ..._default import get_client
from ..._internal import RateLimitedLog, internal_error
from ...errors import InvalidEventError
from ...events import normalize_fields, validate_email
from ...subscribers import build_upsert

__all__ = [
    "SubscriberSync",
    "connect",
    "current",
    "disconnect",
    "load_config",
    "sync_user",
    "user_queryset",
]

#: the setting's keys
OPTIONS = ("model", "fields", "tags", "active", "updated_field")
#: Bento's own keys: not custom fields
_RESERVED = frozenset({"email", "tags", "remove_tags"})
#: timestamp fields `--since` looks for when `updated_field` is not set
_UPDATED_NAMES = ("updated_at", "modified_at", "modified", "last_modified", "updated")
#: saves that change nothing Bento holds (Django's own, at each login)
_IGNORED_UPDATES = frozenset({"last_login"})
#: what `pre_save` learned, kept on the instance until `post_save`
_BEFORE = "_bento_track_before"
_UID = "bento_track.integrations.django.subscribers"
_MISSING = object()

_warnings = RateLimitedLog()


def _setting_error(what: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"BENTO_TRACK['subscribers']{what}")


def _callable(option: str, value: Any) -> Callable[[Any], Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise _setting_error(
                f"[{option!r}]: cannot import {value!r}: {exc}"
            ) from exc
    if not callable(value):
        raise _setting_error(
            f"[{option!r}] must be a callable of the user (or its dotted path)"
        )
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SubscriberSync:
    """The checked `BENTO_TRACK["subscribers"]` setting, and what it does to
    one user (see the module docstring).

    Attributes:
        model: the user model.
        fields: Bento field -> attribute path (as a tuple of names).
        tags: user -> tags to add (an iterable of names, or a dict with
            "tags" and "remove_tags"), or None.
        active: user -> bool, or None (the model's `is_active`, else True).
        email_field: the model's email attribute.
        updated_field: the timestamp `--since` filters on, or None.
        watched: related model -> the user model's lookup to its users
            (one-to-one relations the fields go through).
        select_related: relations to join when reading many users.
    """

    model: Any
    fields: dict[str, tuple[str, ...]]
    tags: Callable[[Any], Any] | None
    active: Callable[[Any], Any] | None
    email_field: str
    updated_field: str | None
    watched: dict[Any, str]
    select_related: tuple[str, ...]

    def email_of(self, user: Any) -> str | None:
        """The user's valid email, or None."""
        try:
            return validate_email(getattr(user, self.email_field, None))
        except InvalidEventError:
            return None

    def is_active(self, user: Any) -> bool:
        """`active(user)`, or the model's `is_active` (True without one)."""
        if self.active is not None:
            return bool(self.active(user))
        return bool(getattr(user, "is_active", True))

    def row(self, user: Any) -> dict[str, Any] | None:
        """The user as a `sync_subscribers` row (`email`, `fields`, `tags`,
        `remove_tags`), or None without a valid email. Fields that cannot
        be read (a missing related object) or held are left out."""
        email = self.email_of(user)
        if email is None:
            return None
        fields: dict[str, Any] = {}
        for key, path in self.fields.items():
            value = _resolve(user, path)
            if value is _MISSING:
                continue
            try:
                fields.update(normalize_fields({key: value}) or {})
            except InvalidEventError as exc:
                _warnings.warn(
                    f"subscriber field {key}",
                    1,
                    "subscriber field %r of %s left out: %s",
                    key,
                    self.model._meta.label,
                    exc,
                )
        row: dict[str, Any] = {"email": email, "fields": fields}
        if self.tags is not None:
            row.update(self._tags(user, email))
        return row

    def _tags(self, user: Any, email: str) -> dict[str, Any]:
        value = self.tags(user) if self.tags is not None else None
        if value is None:
            return {}
        if isinstance(value, Mapping):
            wanted = {k: value[k] for k in ("tags", "remove_tags") if k in value}
        else:
            wanted = {"tags": value}
        try:
            # Checked here so one bad tag costs the tags, not the upsert.
            checked = build_upsert(email, None, **wanted)
        except InvalidEventError as exc:
            _warnings.warn("subscriber tags", 1, "subscriber tags left out: %s", exc)
            return {}
        return {"tags": list(checked.tags), "remove_tags": list(checked.remove_tags)}


def _resolve(obj: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` from `obj`, or `_MISSING` when a related object
    on the way does not exist (or is None)."""
    for name in path:
        if obj is None:
            return _MISSING
        try:
            obj = getattr(obj, name)
        except ObjectDoesNotExist:
            return _MISSING
        if inspect.ismethod(obj):
            obj = obj()
    return obj


def _check_path(model: Any, key: str, path: tuple[str, ...]) -> str | None:
    """Check `path` on `model` as far as the model's fields say; return the
    relation to watch (the first step, when it is one-to-one), or None."""
    where = f"['fields'][{key!r}]: {'.'.join(path)!r}"
    current: Any = model
    watch = None
    for i, name in enumerate(path):
        last = i == len(path) - 1
        if current is None:  # past a property or method: cannot check
            break
        try:
            field = current._meta.get_field(name)
        except FieldDoesNotExist:
            if not hasattr(current, name):
                raise _setting_error(
                    f"{where}: {current._meta.label} has no field or attribute {name!r}"
                ) from None
            current = None
            continue
        if not field.is_relation:
            if not last:
                raise _setting_error(
                    f"{where}: {name!r} is a value, not a related object"
                )
            break
        if field.many_to_many or field.one_to_many:
            raise _setting_error(
                f"{where}: {name!r} holds many objects; a field holds one value "
                "(a `tags` callable can turn many into tags)"
            )
        if last:
            raise _setting_error(
                f"{where} names a related object; name one of its fields, e.g. "
                f"'{'.'.join(path)}.pk'"
            )
        if i == 0 and field.one_to_one:
            watch = name
        current = field.related_model
    return watch


def _relations(model: Any, path: tuple[str, ...]) -> str | None:
    """The `select_related` lookup for the related objects `path` reads."""
    steps = []
    current: Any = model
    for name in path[:-1]:
        try:
            field = current._meta.get_field(name)
        except (FieldDoesNotExist, AttributeError):
            break
        if not field.is_relation or not (field.many_to_one or field.one_to_one):
            break
        steps.append(name)
        current = field.related_model
    return "__".join(steps) or None


def load_config(raw: object) -> SubscriberSync:
    """The checked setting (`True`: every default).

    Raises:
        ImproperlyConfigured: an unknown key, a model that is not installed,
            a path the model does not have, a reserved field name, or a
            callable that cannot be imported.
    """
    options = {} if raw is True else raw
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(
            "BENTO_TRACK['subscribers'] must be True or a dict, not "
            f"{type(raw).__name__}"
        )
    unknown = sorted(str(k) for k in options if k not in OPTIONS)
    if unknown:
        raise _setting_error(
            f": unknown key(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}"
        )
    label = options.get("model") or settings.AUTH_USER_MODEL
    try:
        model = apps.get_model(label)
    except (ValueError, LookupError) as exc:
        raise _setting_error(f"['model']: {exc}") from None
    names = {f.name for f in model._meta.get_fields()}
    raw_fields = options.get("fields")
    if raw_fields is None:
        raw_fields = {n: n for n in ("first_name", "last_name") if n in names}
    if not isinstance(raw_fields, Mapping):
        raise _setting_error("['fields'] must be a dict of Bento field to path")
    fields: dict[str, tuple[str, ...]] = {}
    watched: dict[Any, str] = {}
    joins: list[str] = []
    for key, path in raw_fields.items():
        if not isinstance(key, str) or not key or not isinstance(path, str):
            raise _setting_error(
                f"['fields']: {key!r}: {path!r} must be a field name and a "
                "dotted path (strings)"
            )
        if key in _RESERVED:
            raise _setting_error(
                f"['fields'][{key!r}]: Bento reads {key!r} itself; name the field "
                "otherwise"
            )
        steps = tuple(path.split("."))
        if not all(steps):
            raise _setting_error(f"['fields'][{key!r}]: {path!r} is not a path")
        watch = _check_path(model, key, steps)
        if watch is not None:
            related = model._meta.get_field(watch).related_model
            watched[related] = watch
        join = _relations(model, steps)
        if join is not None and join not in joins:
            joins.append(join)
        fields[key] = steps
    email_field = (
        model.get_email_field_name()
        if hasattr(model, "get_email_field_name")
        else "email"
    )
    if email_field not in names:
        raise _setting_error(
            f": {model._meta.label} has no {email_field!r} field to read emails from"
        )
    updated = options.get("updated_field")
    if updated is not None and updated not in names:
        raise _setting_error(
            f"['updated_field']: {model._meta.label} has no field {updated!r}"
        )
    if updated is None:
        updated = next((n for n in _UPDATED_NAMES if n in names), None)
    return SubscriberSync(
        model=model,
        fields=fields,
        tags=_callable("tags", options.get("tags")),
        active=_callable("active", options.get("active")),
        email_field=email_field,
        updated_field=updated,
        watched=watched,
        select_related=tuple(joins),
    )


# -- the signals ---------------------------------------------------------------

_config: SubscriberSync | None = None


def current() -> SubscriberSync | None:
    """The connected configuration, or None."""
    return _config


def _fresh(config: SubscriberSync, pk: Any, using: str) -> Any:
    """The user as committed, with the related objects the fields read."""
    query = config.model._base_manager.using(using)
    if config.select_related:
        query = query.select_related(*config.select_related)
    return query.filter(pk=pk).first()


def _upsert(config: SubscriberSync, user: Any) -> None:
    row = config.row(user)
    if row is not None:
        get_client().upsert_subscriber(
            row["email"], row["fields"], row.get("tags"), row.get("remove_tags")
        )


def _before_save(
    sender: Any, instance: Any, raw: bool = False, using: str = "default", **kw: Any
) -> None:
    """`pre_save`: the stored email and active state, for `post_save`."""
    try:
        config = _config
        update_fields = kw.get("update_fields")
        if config is None or raw:
            return
        if update_fields is not None and set(update_fields) <= _IGNORED_UPDATES:
            return
        before = None
        if instance.pk is not None and not instance._state.adding:
            old = config.model._base_manager.using(using).filter(pk=instance.pk).first()
            if old is not None:
                before = (config.email_of(old), config.is_active(old))
        instance.__dict__[_BEFORE] = before
    except Exception:
        internal_error("Django subscriber sync (pre_save)")


def _after_save(
    sender: Any,
    instance: Any,
    created: bool = False,
    raw: bool = False,
    using: str = "default",
    **kw: Any,
) -> None:
    """`post_save`: what this save changed, sent after the commit."""
    try:
        config = _config
        if config is None or raw or _BEFORE not in instance.__dict__:
            return
        before = instance.__dict__.pop(_BEFORE)
        sync = functools.partial(
            _saved, config, instance.pk, using, before, config.email_of(instance)
        )
        transaction.on_commit(sync, using=using)
    except Exception:
        internal_error("Django subscriber sync (post_save)")


def _saved(
    config: SubscriberSync,
    pk: Any,
    using: str,
    before: tuple[str | None, bool] | None,
    saved_email: str | None,
) -> None:
    """After the commit of a user's save: change the email, then upsert, or
    unsubscribe one who stopped being active."""
    try:
        client = get_client()
        old_email, was_active = before if before is not None else (None, False)
        if (
            was_active  # a subscriber Bento has: move it, keeping its history
            and old_email is not None
            and saved_email is not None
            and old_email.lower() != saved_email.lower()
        ):
            client.change_subscriber_email(old_email, saved_email)
        user = _fresh(config, pk, using)
        if user is None:  # deleted since, in the same transaction: post_delete
            return
        email = config.email_of(user)
        if email is None:
            if old_email is not None and was_active:
                # No address on record any more: stop mailing the old one.
                client.unsubscribe_subscriber(old_email)
            return
        if saved_email is None or email.lower() != saved_email.lower():
            return  # changed again later in the transaction: that save's turn
        if config.is_active(user):
            _upsert(config, user)
        elif was_active:
            client.unsubscribe_subscriber(email)
    except Exception:
        internal_error("Django subscriber sync (after commit)")


def _after_delete(
    sender: Any, instance: Any, using: str = "default", **kw: Any
) -> None:
    """`post_delete`: an active user's email unsubscribed after the commit
    (an inactive one was unsubscribed, or never subscribed)."""
    try:
        config = _config
        if config is None:
            return
        email = config.email_of(instance)
        if email is None or not config.is_active(instance):
            return
        client_call = functools.partial(_unsubscribe, email)
        transaction.on_commit(client_call, using=using)
    except Exception:
        internal_error("Django subscriber sync (post_delete)")


def _unsubscribe(email: str) -> None:
    try:
        get_client().unsubscribe_subscriber(email)
    except Exception:
        internal_error("Django subscriber sync (after commit)")


def _related_saved(
    sender: Any, instance: Any, raw: bool = False, using: str = "default", **kw: Any
) -> None:
    """`post_save` of a one-to-one related object: its user's upsert."""
    try:
        config = _config
        if config is None or raw or sender not in config.watched:
            return
        lookup = config.watched[sender]
        sync = functools.partial(_related, config, lookup, instance.pk, using)
        transaction.on_commit(sync, using=using)
    except Exception:
        internal_error("Django subscriber sync (related post_save)")


def _related(config: SubscriberSync, lookup: str, pk: Any, using: str) -> None:
    try:
        query = config.model._base_manager.using(using)
        if config.select_related:
            query = query.select_related(*config.select_related)
        for user in query.filter(**{lookup: pk}):
            if config.is_active(user):
                _upsert(config, user)
    except Exception:
        internal_error("Django subscriber sync (after commit)")


def sync_user(user: Any) -> None:
    """Send `user`'s current state now: an upsert when active, else an
    unsubscribe. For changes the signals do not see (`QuerySet.update()`,
    many-to-many tags). Delivery trouble is logged, never raised.

    Raises:
        ImproperlyConfigured: `BENTO_TRACK["subscribers"]` is not set.
    """
    config = _config
    if config is None:
        raise ImproperlyConfigured(
            "sync_user() needs BENTO_TRACK['subscribers'] in the settings"
        )
    try:
        if config.is_active(user):
            _upsert(config, user)
        else:
            email = config.email_of(user)
            if email is not None:
                get_client().unsubscribe_subscriber(email)
    except Exception:
        internal_error("Django subscriber sync (sync_user)")


def connect(config: SubscriberSync) -> None:
    """Connect the receivers for `config` (replacing any earlier one)."""
    global _config
    disconnect()
    _config = config
    model = config.model
    pre_save.connect(_before_save, sender=model, dispatch_uid=_UID + ".pre")
    post_save.connect(_after_save, sender=model, dispatch_uid=_UID + ".post")
    post_delete.connect(_after_delete, sender=model, dispatch_uid=_UID + ".delete")
    for related in config.watched:
        post_save.connect(
            _related_saved,
            sender=related,
            dispatch_uid=f"{_UID}.related.{related._meta.label}",
        )


def disconnect() -> None:
    """Disconnect what `connect` connected (harmless if nothing is)."""
    global _config
    config, _config = _config, None
    if config is None:
        return
    model = config.model
    pre_save.disconnect(sender=model, dispatch_uid=_UID + ".pre")
    post_save.disconnect(sender=model, dispatch_uid=_UID + ".post")
    post_delete.disconnect(sender=model, dispatch_uid=_UID + ".delete")
    for related in config.watched:
        post_save.disconnect(
            sender=related, dispatch_uid=f"{_UID}.related.{related._meta.label}"
        )


def user_queryset(config: SubscriberSync, using: str | None = None) -> Any:
    """Every user with an email, in primary-key order, with the related
    objects the fields read joined (the backfill's query)."""
    query = config.model._default_manager
    if using is not None:
        query = query.using(using)
    if config.select_related:
        query = query.select_related(*config.select_related)
    email = config.email_field
    query = query.exclude(**{f"{email}__isnull": True}).exclude(**{email: ""})
    return query.order_by("pk")

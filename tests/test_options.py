"""One declaration of the client's options (`bento_track.options`): `Client`,
`init()` and the worker's settings agree with it, defaults and ranges."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import bento_track
from bento_track._delivery.worker import WorkerSettings
from bento_track.errors import ConfigurationError
from bento_track.options import OPTIONS

KEYS = dict(site_uuid="site", publishable_key="pk", secret_key="sk")


def defaults(function) -> dict[str, object]:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if name != "self" and not name.startswith("_")
    }


def test_client_and_init_take_the_declared_options_with_their_defaults() -> None:
    declared = {name: option.default for name, option in OPTIONS.items()}
    assert defaults(bento_track.Client.__init__) == declared
    assert defaults(bento_track.init) == declared


def test_the_worker_settings_defaults_are_the_declared_ones() -> None:
    for field in dataclasses.fields(WorkerSettings):
        if field.name in OPTIONS:
            assert field.default == OPTIONS[field.name].default, field.name


@pytest.mark.parametrize(
    "option", [o for o in OPTIONS.values() if o.low is not None], ids=lambda o: o.name
)
def test_each_numeric_option_is_checked_against_its_declared_range(option) -> None:
    """The bounds are accepted, one step beyond them refused, naming it."""
    step = 1 if option.integer else 0.0001
    for ok in (option.low, option.high):
        value = int(ok) if option.integer else ok
        bento_track.Client(**KEYS, **{option.name: value}).shutdown(0)
    for bad in (option.low - step, option.high + step):
        value = int(bad) if option.integer else bad
        with pytest.raises(ConfigurationError) as info:
            bento_track.Client(**KEYS, **{option.name: value})
        assert info.value.setting == option.name

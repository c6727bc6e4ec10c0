"""A Redis store's URL is private and checked: its password, in every form
it can be given, never shows (repr, `location`, `stats()`, exit messages,
warnings, `bento-track store` text and JSON, errors), and a malformed URL or
option is a `ConfigurationError` naming `store` when the client is made."""

from __future__ import annotations

import json
import logging

import pytest

import bento_track
from bento_track.cli import main
from bento_track.errors import ConfigurationError
from bento_track.stores.redis import open_redis_store
from bento_track.stores.redis_url import parse_redis_url, redacted

from ..helpers import wait_until

SECRET = "S3cret-pw"

#: each form a password can take in a well-formed URL (HOST: the server)
FORMS = {
    "userinfo": f"redis://:{SECRET}@HOST/0?namespace=NS",
    "user and password": f"redis://app:{SECRET}@HOST/0?namespace=NS",
    "query": f"redis://HOST/0?password={SECRET}&namespace=NS",
    "query with user": f"redis://HOST/0?username=app&password={SECRET}&namespace=NS",
    "encoded in userinfo": "redis://:S3cret%23pw@HOST/0?namespace=NS",
}


@pytest.fixture
def locked_redis(own_redis):
    """A server that wants a password: for the default user and `app`."""
    db = own_redis.client()
    db.acl_setuser(
        "app",
        enabled=True,
        passwords=[f"+{SECRET}", "+S3cret#pw"],
        keys=["*"],
        commands=["+@all"],
    )
    db.config_set("requirepass", SECRET)
    db.close()
    return own_redis


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_password_never_shows_in_any_form(
    form, locked_redis, emulator, caplog, capsys
) -> None:
    if form == "encoded in userinfo":
        secret_shown = ("S3cret", "%23pw")
        url = FORMS[form].replace("redis://:", "redis://app:")
    else:
        secret_shown = (SECRET,)
        url = FORMS[form]
    url = url.replace("HOST", f"127.0.0.1:{locked_redis.port}").replace(
        "NS", form.replace(" ", "-")
    )
    emulator.inspect.set_rate_limit(1000, 1.0)
    emulator.inspect.fail_next(1_000, status=503)  # events stay in the store
    caplog.set_level(logging.INFO, logger="bento_track")
    client = bento_track.Client(
        store=url,
        requests_per_minute=1000,
        rate_window=1.0,
        flush_interval=0.05,
        shutdown_timeout=0.5,
        **emulator.client_kwargs(),
    )
    texts = [repr(client)]
    try:
        for i in range(3):
            client.track("a", email="private@example.com", details={"seq": i})
        wait_until(lambda: client.stats().store.depth == 3, 20)  # it connected
        store = client.stats().store
        texts += [store.location or "", repr(store)]
    finally:
        assert client.shutdown() == 3
    assert main(["store", url]) == 0
    assert main(["store", url, "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[-1])["depth"] == 3
    assert "(Redis, namespace" in out  # the text names the store...
    assert "wait in the store" in caplog.text  # ...and so does the exit
    texts += [out, caplog.text]
    opened = open_redis_store(url, max_bytes=2**20)
    texts += [repr(opened), opened.location, opened.url]
    opened.close()
    # A wrong password: the warnings and the errors name the store too.
    wrong = url.replace(SECRET, "Wr0ng-pw").replace("S3cret%23pw", "Wr0ng%23pw")
    caplog.clear()
    refused = open_redis_store(wrong, max_bytes=2**20)
    with pytest.raises(Exception) as info:
        refused.read_stats()
    texts += [str(info.value), repr(refused)]
    refused.close()
    assert main(["store", wrong]) == 2
    err = capsys.readouterr().err
    assert "cannot read the Redis store redis://" in err
    texts += [err, caplog.text]
    assert "***" in texts[1]
    for text in texts:
        for secret in (*secret_shown, "Wr0ng"):
            assert secret not in text, (secret, text)


#: passwords with an unencoded '#', '/', '?' or '@' split the URL in the
#: wrong place: refused, and never shown
BROKEN = {
    "hash": "redis://:pa#SECRETss@127.0.0.1:6379/0",
    "slash": "redis://:pa/SECRETss@127.0.0.1:6379/0",
    "question mark": "redis://:pa?SECRETss@127.0.0.1:6379/0",
    "slash, no db": "redis://:pa/SECRETss@127.0.0.1:6379",
    "hash with options": "redis://:pa#SECRETss@h:6379/0?socket_timeout=abc",
    "user": "redis://app:pa/SECRETss@127.0.0.1/0",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_an_unencoded_character_in_a_password_is_refused_unshown(
    name, caplog, emulator
) -> None:
    url = BROKEN[name]
    with pytest.raises(ConfigurationError) as info:
        bento_track.Client(store=url, **emulator.client_kwargs())
    text = str(info.value)
    assert info.value.setting == "store" and text.startswith("store:")
    assert "percent-encode" in text
    assert "SECRET" not in text and "SECRET" not in caplog.text
    assert "SECRET" not in redacted(url) and "***@" in redacted(url)


MALFORMED = {
    "port abc": ("redis://127.0.0.1:abc/0", "port"),
    "port 99999": ("redis://127.0.0.1:99999/0", "port"),
    "port 0": ("redis://127.0.0.1:0/0", "port"),
    "unclosed bracket": ("redis://[::1/0", "'\\['"),
    "unclosed bracket, no path": ("redis://[::1:6379", "'\\['"),
    "bracket not IPv6": ("redis://[host]:6379/0", "IPv6"),
    "socket_timeout abc": ("redis://h/0?socket_timeout=abc", "socket_timeout"),
    "socket_timeout negative": ("redis://h/0?socket_timeout=-1", "socket_timeout"),
    "db x": ("redis://h:6379?db=x", "db"),
    "db path x": ("redis://h:6379/x", "database"),
    "two databases": ("redis://h/1?db=2", "two databases"),
    "unknown option": ("redis://h/0?sockettimeout=1", "unknown Redis URL option"),
    "option twice": ("redis://h/0?namespace=a&namespace=b", "twice"),
    "password twice": (f"redis://:x@h/0?password={SECRET}", "twice"),
    "resp3": ("redis://h/0?protocol=3", "protocol"),
    "tls option without tls": ("redis://h/0?ssl_cert_reqs=none", "rediss"),
    "cert reqs": ("rediss://h/0?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
    "bool": ("redis://h/0?socket_keepalive=perhaps", "socket_keepalive"),
    "max_connections 0": ("redis://h/0?max_connections=0", "max_connections"),
    "no host": ("redis:///0", "host"),
    "no scheme slashes": (f"redis:{SECRET}@h/0", "redis://"),
    "namespace": ("redis://h/0?namespace=a:b", "namespace"),
    "visibility_timeout": ("redis://h/0?visibility_timeout=x", "visibility_timeout"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_url_or_option_is_a_configuration_error(name, emulator) -> None:
    url, word = MALFORMED[name]
    with pytest.raises(ConfigurationError, match=word) as info:
        bento_track.Client(store=url, **emulator.client_kwargs())
    assert info.value.setting == "store" and str(info.value).startswith("store:")
    assert SECRET not in str(info.value)


def test_well_formed_urls_take_their_parts() -> None:
    cases = {
        "redis://h": ("h", 6379, 0),
        "redis://h:6380/": ("h", 6380, 0),
        "redis://[::1]:6379/3": ("::1", 6379, 3),
        "REDIS://h/2": ("h", 6379, 2),
        "redis://h?db=4": ("h", 6379, 4),
        "redis://:p%2Fw%23d@h/0": ("h", 6379, 0),
    }
    for url, (host, port, db) in cases.items():
        connection = parse_redis_url(url).connection
        assert (connection["host"], connection["port"], connection["db"]) == (
            host,
            port,
            db,
        ), url
    assert parse_redis_url("redis://:p%2Fw%23d@h/0").connection["password"] == "p/w#d"
    assert parse_redis_url("rediss://h/0?ssl_cert_reqs=none").connection["ssl"]
    # A '@' in an option (a fallback path) is not a password.
    path = "redis://h:1/0?fallback=sqlite:////tmp/a@b.db"
    assert redacted(path) == path

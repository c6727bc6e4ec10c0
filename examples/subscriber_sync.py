"""Sync subscribers from a CSV file (an `email` column, plus `first_name`,
`tags` as "a,b" and any custom field) with `BentoAPI.import_subscribers`,
1,000 per request. The command line does the same:
`bento-track import-subscribers FILE.csv`.

Run it (no Bento account needed; with BENTO_* credentials set it sends to Bento):

    python examples/subscriber_sync.py [FILE.csv]

Without a file it writes and imports a small sample.
"""

import csv
import os
import sys
import tempfile

from bento_track.api import BentoAPI
from bento_track.events import validate_email

SAMPLE = """email,first_name,tags,plan
ann@example.com,Ann,"customer,beta",pro
bob@example.com,Bob,lead,free
not-an-email,Nobody,,free
"""


def use_embedded_emulator():
    """No BENTO_* credentials: start the embedded emulator and send there."""
    if os.environ.get("BENTO_SECRET_KEY"):
        return None
    from bento_track.emulator import EmulatorServer

    server = EmulatorServer(port=0).start()
    os.environ.update(
        BENTO_SITE_UUID=server.site_uuid,
        BENTO_PUBLISHABLE_KEY=server.publishable_key,
        BENTO_SECRET_KEY=server.secret_key,
        BENTO_BASE_URL=server.base_url,
    )
    print(f"Emulator inbox: {server.url}/_emulator/", flush=True)
    return server


def read_subscribers(path):
    """Valid rows as dicts; bad ones reported with their line number."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                row["email"] = validate_email(row.get("email"))
            except ValueError as exc:
                print(f"line {line}: skipped ({exc})")
                continue
            rows.append({key: value for key, value in row.items() if value})
    return rows


def main():
    server = use_embedded_emulator()
    if len(sys.argv) > 1:
        path = sys.argv[1]
    else:
        path = os.path.join(tempfile.mkdtemp(), "subscribers.csv")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(SAMPLE)
    subscribers = read_subscribers(path)
    with BentoAPI() as api:
        result = api.import_subscribers(subscribers)
    print(
        f"imported: {result.results}, failed: {result.failed}, requests: {result.requests}"
    )
    if server is not None:
        for sub in server.inspect.subscribers():
            print(
                f"received: {sub['email']} {sub.get('fields')} tags={sub.get('tags')}"
            )


if __name__ == "__main__":
    main()

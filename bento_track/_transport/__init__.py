"""HTTP details shared by the API clients (`bento_track.api`) and delivery:
headers, timeouts, error mapping, `Retry-After` and backoff (`http`), and the
request building and answer parsing of every endpoint (`requests`)."""

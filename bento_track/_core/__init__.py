"""The bottom layer: what the stores and delivery both work with.

- `records`: a queued record (an encoded event or update), its size, a
  request body built from records, and when a batch is due (`BatchPolicy`).
- `kinds`: what a record holds (event, subscriber upsert, subscriber
  command) and how a batch of one kind becomes a request.
- `clock`: the injectable clock every timed decision reads.
- `budget`: the request budget (sliding window plus 429 pause; pure).

It imports nothing of bento_track but `_internal` and `errors`; the stores
import only it (and those), and delivery builds on both. This package's
`__init__` imports nothing.
"""

"""Delivery: the per-process worker that moves captured events to Bento.

- `encoding`: an event encoded once into its record, and back for signals.
- `sender`: posting one batch body and classifying the answer.
- `worker`: the thread (or sync-mode loop) that ties them together, over a
  store (`bento_track.stores`) and the bottom layer (`bento_track._core`),
  with its parts: `inbox` (the inbox into the store), `planning` (the next
  step), `outcomes` (what an answer leads to), `ledger` (what is settled),
  `drops` and `stats` (what was lost, and the counters).
"""

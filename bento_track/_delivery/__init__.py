"""Delivery: the per-process worker that moves captured events to Bento.

- `clock`: the injectable clock every timed decision reads.
- `batcher`: encoding events once and building request bodies (pure).
- `budget`: the request budget (sliding window plus 429 pause; pure).
- `sender`: posting one batch body and classifying the answer.
- `worker`: the thread (or sync-mode loop) that ties them together.
"""

"""The warning a client's shutdown logs when events are left undelivered:
how many, why, and whether they wait in a durable store or are lost."""

from __future__ import annotations

from .._internal import logger

__all__ = ["say_undelivered"]


def say_undelivered(
    left: int, kept: int, why: str, location: str | None, unanswered: int
) -> None:
    """Of `left` undelivered events, `kept` are in the durable store at
    `location` (the store's own count); the rest end with this process, of
    which `unanswered` were written to the store without an answer."""
    lost = left - kept
    if not kept:
        logger.warning(
            "bento_track: shut down with %d events undelivered (%s); they "
            "are lost with this process",
            left,
            why,
        )
    elif not lost:
        logger.warning(
            "bento_track: shut down with %d events undelivered (%s); all "
            "wait in the store %s for the next process",
            left,
            why,
            location,
        )
    else:
        unanswered = min(lost, unanswered)
        logger.warning(
            "bento_track: shut down with %d events undelivered (%s); %d wait "
            "in the store %s for the next process, %d are lost with this "
            "process (%s)",
            left,
            why,
            kept,
            location,
            lost,
            f"{unanswered} of them were written to the store without an "
            "answer and may still arrive"
            if unanswered
            else "they never reached the store",
        )

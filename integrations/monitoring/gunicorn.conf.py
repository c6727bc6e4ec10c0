"""gunicorn settings of prometheus_client's multiprocess mode: a dead
worker's live gauges are forgotten (its counters stay counted)."""

from prometheus_client import multiprocess


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)

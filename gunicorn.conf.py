"""Gunicorn settings for the webapp, read from the working directory
(`gunicorn webapp.wsgi:app`; the Procfile runs it this way).

Threads (gthread): agent pages hold a live-updates stream (Server-Sent Events,
webapp/live.py) open, and each open stream occupies a thread while it waits.
A sync worker would be blocked by one open page; threads are cheap while they
wait. LIVE_MAX_STREAMS (default 24) keeps threads free for everything else;
raise both together, or add workers, for more agents.
"""
import os
import signal

worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "1"))
threads = int(os.environ.get("WEB_THREADS", "32"))
# Open streams end at once on shutdown (below), so a short grace period is enough.
graceful_timeout = 10


def post_worker_init(worker):
    """On SIGTERM, end the worker's live-updates streams first: the browsers
    reconnect (to another worker) and the graceful stop does not wait for them."""
    from webapp.live import close_streams

    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum, frame):
        close_streams(worker.wsgi)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, stop)

"""gunicorn's settings for Tandem in production (`make serve`, after it migrates).

    .venv/bin/gunicorn --config gunicorn.conf.py

The environment decides where and how many (`.env` is read as `flask` reads it):
HOST (default 127.0.0.1; 0.0.0.0 for every interface) and PORT (default 8000), and
WEB_CONCURRENCY web processes (default: the CPU count, at least 2, at most 8), each with
`threads` threads. Anything below can be changed without editing this file, e.g.
`GUNICORN_CMD_ARGS="--threads 8 --timeout 120" make serve`.

Each web process imports the app and loads the embedding model itself, after the fork
(`preload_app = False`): torch hangs on inference in a process forked after it ran, so the
model must never be loaded before the fork.

Web processes never consume the job queue: `make worker` processes do (`flask --app app
worker`), with Redis (`REDIS_URL`) on any machine, with the embedded SQLite queue on this one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from flask.cli import load_dotenv

ROOT = Path(__file__).resolve().parent
load_dotenv()

wsgi_app = "app:create_app()"

host = os.environ.get("HOST") or "127.0.0.1"
port = os.environ.get("PORT") or "8000"
bind = [f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"]
# Links in mail name this port unless TANDEM_BASE_URL is set (app.config.served_address).
os.environ["PORT"] = port

workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, min(os.cpu_count() or 1, 8)))
# Threads make gunicorn's gthread worker: a request waiting on the database or on a search
# query's embedding holds a thread, not the whole process.
threads = 4
# gthread workers notify the master from their main loop, so a long request does not count
# against `timeout`; a process that stops answering altogether is restarted after it.
timeout = 60
graceful_timeout = 30
keepalive = 5
# Each web process listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new
# connections over them. On one shared socket, a burst of connections (a proxy's kept-alive
# pool, a load test's 8) was often all accepted by whichever process woke first: measured
# here, in 2 of 6 runs every connection went to one process and the page served 610-680
# requests/s instead of 1,630-1,980, the other process idle.
reuse_port = True
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"  # heartbeat files off the disk (they are touched often)

preload_app = False

accesslog = "-"
errorlog = "-"
loglevel = "info"
# The default format, plus the time taken (ms).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'

# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl),
# which two servers of one user would share; `gunicornc` is not needed to run Tandem.
control_socket_disable = True

# The web processes only enqueue; `make worker` processes run the jobs.
if not os.environ.get("TANDEM_QUEUE_THREADS"):
    os.environ["TANDEM_QUEUE_THREADS"] = "0"

# Metrics from every process on this machine (web processes and `make worker` processes)
# are added up at /metrics: prometheus-client's multiprocess mode, one file per process in
# this folder. It is set before any web process imports prometheus_client.
_instance = Path(os.environ.get("TANDEM_INSTANCE_PATH") or ROOT / "instance")
METRICS_DIR = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or _instance / "prometheus")
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
_PROCESS_FILE = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def on_starting(server: Any) -> None:
    """Forget the metrics of processes that ended before this start (their totals would be
    added to the new ones forever); a worker still running keeps its file."""
    for path in METRICS_DIR.glob("*.db"):
        found = _PROCESS_FILE.search(path.name)
        if found and not _alive(int(found.group(1))):
            path.unlink(missing_ok=True)


def post_worker_init(worker: Any) -> None:
    """The app is loaded in this web process: freeze what it holds (modules, routes,
    templates: about 240,000 objects) out of the garbage collector's reach, and have the
    embedding model's (about 170,000 more) frozen once it is loaded. A full collection would
    otherwise walk them all, holding every thread of the process for 130-220 ms, which is
    where the pages' p99 under load went (`gc.collect(2)` measured in such a process: 216 ms
    before, 0.3 ms after 800 requests once frozen). Nothing frozen is ever freed: it is
    what the process keeps until it ends anyway."""
    import gc

    app = getattr(worker, "wsgi", None)
    if hasattr(app, "config"):  # app.matcher.FREEZE_HEAP; not imported: any app is served
        app.config["TANDEM_FREEZE_HEAP"] = True
    gc.collect()
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """A web process ended: its live gauges no longer count (its totals still do)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

"""Tandem's pages under load: the production server on PostgreSQL with synthetic catalogues
of the demo's size (42 x 12) and of 10,000 x 2,000, against a bare Flask JSON route served the
same way in the same run. Each size is measured in turn (`--sizes`).

What it does, in order (issue 14, point 5):
1. prints the machine (CPU model, SIMD flags, load average);
2. opens the PostgreSQL database `TANDEM_BENCH_DATABASE_URL` (default
   postgresql://postgres@127.0.0.1:5432/tandem_bench_load), creating it if missing; it fails
   with a message if PostgreSQL does not answer (it never falls back to SQLite);
3. migrates it and generates the catalogue (`flask --app app catalogue generate --encoder
   stand-in`, 10,000 proposals x 2,000 offers x 5 publications per academic), timed. That
   takes many minutes, so the database is kept and reused by later runs while its catalogue
   has the size asked for (recorded in the database's comment); `--fresh` rebuilds it;
4. serves Tandem with gunicorn and the repository's gunicorn.conf.py (WEB_CONCURRENCY=2,
   `TANDEM_MODEL=stand-in` so searches are ranked against the vectors the catalogue was
   stored with, REDIS_URL if set) and, in the same run, bench/_bare_app.py with the same
   configuration on another port;
5. signs in as the academic with the most proposals and as a member of the company with the
   most offers (each given a new random password each run) through the real /login form,
   checks that every URL answers 200, then loads each in turn for a bounded time (longer, up
   to --longest, for a page too slow to answer a few requests in --duration) with wrk when it
   is installed, else with this script's own load generator (client processes with threads on
   persistent connections), in --repeats rounds over every URL (the bare route's rows among
   them), and prints per URL the median of its rounds: requests/s, the ratio to the bare
   route of the same round, p50 and p99 latency, and errors (wrk counts a redirect as an
   answer; the script's own client counts anything but 200 as an error), with the worst
   round's ratio and p99 beside them. A pause of the whole machine (these are shared virtual
   machines) lands in one window of one URL, where one long window per URL would carry it
   into that URL's figures;
6. the public pages are answered from the page cache for visitors who are not signed in
   (app/pagecache.py: in Redis when REDIS_URL is set, else in each web process), and the
   signed-in dashboards (academic and company) from the cache kept per person
   (app/dashcache.py); the `cache`
   column says what the page's next answer after its window was (`hit`, `miss`, or `-` for
   a page never cached). Unless `--no-rendered`, a third server with the caches off
   (TANDEM_PAGE_CACHE_SECONDS=0) loads the same public pages and the dashboards (same
   sessions) again, rows marked "(rendered)": what a page costs when it must be rendered
   (after each change to the catalogue, or a URL seen for the first time). The session
   used is the cookie of the sign-in and of the page it leads to, as a browser keeps it.

Only 127.0.0.1 is ever contacted. Run from the project root:

    .venv/bin/python bench/load.py              # about 10 minutes with the catalogues kept
    .venv/bin/python bench/load.py --fresh      # rebuild the catalogue first
    .venv/bin/python bench/load.py --duration 8 --repeats 5 --connections 16
    .venv/bin/python bench/load.py --sizes 10000x2000 --prepare-only   # generate, measure nothing

Prints figures, asserts nothing about them; exits non-zero when something could not be
measured (PostgreSQL down, a server that does not start, a URL that does not answer 200).
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import multiprocessing
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/tandem_bench_load"
HOST = "127.0.0.1"
USER_AGENT = "tandem-bench-load/1"
# Marks the database as this benchmark's, with the catalogue it holds (COMMENT ON DATABASE).
MARKER = "tandem-bench-load"
# Starting two web processes (each imports the app) on a busy two-core machine.
READY_DEADLINE_S = 300.0
STOP_DEADLINE_S = 30.0
# What the servers must not inherit from the shell that runs the benchmark.
NOT_INHERITED = (
    "TANDEM_BASE_URL",
    "FLASK_RUN_HOST",
    "FLASK_RUN_PORT",
    "TANDEM_QUEUE",
    "TANDEM_QUEUE_PATH",
    "TANDEM_QUEUE_THREADS",
    "PROMETHEUS_MULTIPROC_DIR",
    "GUNICORN_CMD_ARGS",
    "MAKEFLAGS",
    "MFLAGS",
)


def _prepare_imports() -> None:
    """The project's packages, not bench/matching.py, answer `import matching`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if sys.path[0] != str(ROOT):
        sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- load generation


@dataclass
class Measured:
    """One URL under load: completed requests, errors and latencies over `seconds`."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    client_cpu_s: float
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def _client_process(
    port: int,
    paths: tuple[str, ...],
    headers: dict[str, str],
    connections: int,
    start_at: float,
    seconds: float,
) -> tuple[int, list[float], dict[str, int], float]:
    """Run `connections` threads, each sending GET `paths` in turn, back to back on one persistent
    connection from `start_at` (time.monotonic, shared by the processes of one machine) for
    `seconds`. Returns (completed requests, their latencies in s, errors by kind, CPU s)."""
    deadline = start_at + seconds
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors: list[dict[str, int]] = [{} for _ in range(connections)]

    def client(slot: int) -> None:
        mine, failed = latencies[slot], errors[slot]
        turn = slot
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        while time.monotonic() < start_at:
            time.sleep(0.001)
        while True:
            sent = time.monotonic()
            if sent >= deadline:
                break
            try:
                connection.request("GET", paths[turn % len(paths)], headers=headers)
                turn += 1
                response = connection.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                status, kind = 0, type(error).__name__
            else:
                kind = "" if status == 200 else f"HTTP {status}"
            done = time.monotonic()
            if done > deadline:
                break
            if kind:
                failed[kind] = failed.get(kind, 0) + 1
            else:
                mine.append(done - sent)
        connection.close()

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    merged_errors: dict[str, int] = {}
    for failed in errors:
        for kind, count in failed.items():
            merged_errors[kind] = merged_errors.get(kind, 0) + count
    flat = [latency for mine in latencies for latency in mine]
    return len(flat), flat, merged_errors, cpu


class PythonLoad:
    """A bounded closed-loop load: `connections` persistent connections split over client
    processes (threads in one Python process would be held back by its GIL before the
    server is), each sending the next request as soon as the last one is answered."""

    name = "Python (http.client, persistent connections)"

    def __init__(self, connections: int, processes: int) -> None:
        self.processes = max(1, min(processes, connections))
        self.split = [
            connections // self.processes + (1 if n < connections % self.processes else 0)
            for n in range(self.processes)
        ]
        # spawn, not fork: this process may hold threads and the app's imports.
        self.pool = multiprocessing.get_context("spawn").Pool(self.processes)

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()

    def run(
        self, port: int, paths: tuple[str, ...], headers: dict[str, str], seconds: float
    ) -> Measured:
        start_at = time.monotonic() + 0.5
        jobs = [
            self.pool.apply_async(_client_process, (port, paths, headers, n, start_at, seconds))
            for n in self.split
        ]
        results = [job.get(timeout=seconds + 120) for job in jobs]
        latencies = sorted(latency for _, values, _, _ in results for latency in values)
        kinds: dict[str, int] = {}
        for _, _, errors, _ in results:
            for kind, count in errors.items():
                kinds[kind] = kinds.get(kind, 0) + count
        return Measured(
            requests=sum(count for count, _, _, _ in results),
            errors=sum(kinds.values()),
            seconds=seconds,
            p50_ms=_percentile(latencies, 0.50) * 1000,
            p99_ms=_percentile(latencies, 0.99) * 1000,
            client_cpu_s=sum(cpu for _, _, _, cpu in results),
            error_kinds=kinds,
        )


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _wrk_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _WRK_UNITS[unit]


class WrkLoad:
    """wrk (C, event loop): the same closed-loop load with far less client CPU per request."""

    def __init__(self, executable: str, connections: int, threads: int) -> None:
        self.executable = executable
        self.connections = connections
        self.threads = max(1, min(threads, connections))
        self.name = f"wrk ({self.threads} threads)"

    def close(self) -> None:
        pass

    def run(
        self, port: int, paths: tuple[str, ...], headers: dict[str, str], seconds: float
    ) -> Measured:
        command = [
            self.executable,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "60s",
            "--latency",
        ]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        with tempfile.TemporaryDirectory(prefix="tandem-bench-wrk-") as folder:
            if len(paths) > 1:  # each connection sends the paths in turn
                script = Path(folder) / "paths.lua"
                script.write_text(
                    "local paths = {" + ", ".join(json.dumps(p) for p in paths) + "}\n"
                    "local turn = 0\n"
                    "request = function()\n"
                    "  turn = turn % #paths + 1\n"
                    '  return wrk.format("GET", paths[turn])\n'
                    "end\n"
                )
                command += ["--script", str(script)]
            command.append(f"http://{HOST}:{port}{paths[0]}")
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        completed = re.search(r"(\d+) requests in", output)
        percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
        if not completed or set(percentiles) != {"50", "99"}:
            sys.exit(f"could not read wrk's output:\n{output}")
        requests = int(completed.group(1))
        kinds: dict[str, int] = {}
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        if non_2xx:
            kinds["HTTP non-2xx/3xx"] = int(non_2xx.group(1))
        sockets = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
        )
        if sockets:
            for kind, count in zip(
                ("connect", "read", "write", "timeout"), sockets.groups(), strict=True
            ):
                if int(count):
                    kinds[f"socket {kind}"] = int(count)
        return Measured(
            requests=requests - kinds.get("HTTP non-2xx/3xx", 0),
            errors=sum(kinds.values()),
            seconds=max(1, round(seconds)),
            p50_ms=_wrk_ms(percentiles["50"]),
            p99_ms=_wrk_ms(percentiles["99"]),
            client_cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            error_kinds=kinds,
        )


# ---------------------------------------------------------------- PostgreSQL


def _psycopg_url(url: str) -> str:
    """The URL as psycopg takes it (no SQLAlchemy driver suffix)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def ensure_database(url: str) -> None:
    """Create the database if it is missing; exit with a message if PostgreSQL does not
    answer."""
    import psycopg

    parsed = urllib.parse.urlsplit(_psycopg_url(url))
    name = parsed.path.lstrip("/")
    if not parsed.scheme.startswith("postgresql") or not name:
        sys.exit(f"TANDEM_BENCH_DATABASE_URL must be a PostgreSQL URL with a database: {url}")
    maintenance = urllib.parse.urlunsplit(parsed._replace(path="/postgres"))
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=10) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                connection.execute(
                    psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name))
                )
                print(f"created database {name}")
    except psycopg.OperationalError as error:
        sys.exit(
            f"PostgreSQL does not answer at {parsed.hostname}:{parsed.port or 5432} "
            f"({error}).\nThis benchmark runs on PostgreSQL only: start it, or point "
            "TANDEM_BENCH_DATABASE_URL at one (postgresql://user@host:port/database)."
        )


def vacuum_analyze(url: str) -> float:
    """VACUUM ANALYZE the catalogue, as autovacuum leaves a database in service: fresh
    planner statistics and visibility maps (a freshly generated table is counted by a full
    scan instead of its index). Returns the seconds it took."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(_psycopg_url(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def read_marker(url: str) -> dict[str, Any] | None:
    """The catalogue this benchmark recorded on the database, or None."""
    import psycopg

    with psycopg.connect(_psycopg_url(url)) as connection:
        comment = connection.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname = current_database()"
        ).fetchone()[0]
    try:
        marker = json.loads(comment or "")
    except ValueError:
        return None
    return marker if isinstance(marker, dict) and marker.get("marker") == MARKER else None


def write_marker(url: str, marker: dict[str, Any] | None) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_psycopg_url(url), autocommit=True) as connection:
        name = connection.execute("SELECT current_database()").fetchone()[0]
        text = json.dumps(marker) if marker is not None else None
        connection.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(text))
        )


def catalogue_rows(url: str) -> dict[str, int]:
    """Rows of the catalogue's main tables (0 where a table does not exist yet)."""
    import psycopg

    counts = {}
    with psycopg.connect(_psycopg_url(url)) as connection:
        for table in ("proposal", "offer", "publication", "user", "match"):
            exists = connection.execute("SELECT to_regclass(%s)", (f'public."{table}"',))
            if exists.fetchone()[0] is None:
                counts[table] = 0
                continue
            counts[table] = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    return counts


def public_tables(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(_psycopg_url(url)) as connection:
        found = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return [name for (name,) in found]


def empty_schema(url: str) -> None:
    """Drop every table of the bench database (its catalogue is rebuilt next)."""
    import psycopg

    with psycopg.connect(_psycopg_url(url), autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


# ---------------------------------------------------------------- processes


def _server_env(database_url: str, secret_key: str, instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=secret_key,
        TANDEM_ENV="production",
        TANDEM_MODEL="stand-in",
        TANDEM_INSTANCE_PATH=str(instance),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def flask_command(args: list[str], env: dict[str, str]) -> None:
    """`flask --app app ARGS`, its output shown as it comes; exits if it fails."""
    command = [sys.executable, "-m", "flask", "--app", "app", *args]
    result = subprocess.run(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        sys.exit(f"`flask --app app {' '.join(args)}` failed (exit {result.returncode})")


@dataclass
class Server:
    """gunicorn in its own process group, its log in a file."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.name} log (last {lines} lines) ---\n" + "\n".join(
            text.splitlines()[-lines:]
        )

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=STOP_DEADLINE_S)
                return
            except subprocess.TimeoutExpired:
                continue


def group_cpu_seconds(group: int) -> float:
    """CPU time used so far by the live processes of a process group (gunicorn's master and
    web processes), from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_idle(server: Server, deadline_s: float = 300.0) -> float:
    """Wait until the server has finished the requests still in flight after a load run (wrk
    leaves them behind when it stops; they would otherwise slow down the next URL): until its
    processes use under 5% of a core over half a second. Returns the seconds waited."""
    started = time.monotonic()
    used = group_cpu_seconds(server.process.pid)
    while time.monotonic() - started < deadline_s:
        time.sleep(0.5)
        now = group_cpu_seconds(server.process.pid)
        if now - used < 0.025:
            break
        used = now
    return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start_gunicorn(name: str, extra: list[str], env: dict[str, str], logs: Path) -> Server:
    port = free_port()
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), *extra],
            cwd=ROOT,
            env={**env, "HOST": HOST, "PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, port, process, log_path)


def cache_state(port: int, path: str, headers: dict[str, str]) -> str:
    """What the page cache (or, for a signed-in dashboard, the dashboard cache of
    app/dashcache.py) did for one more request to `path` (`-` when it was not asked)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        connection.request("GET", path, headers={"User-Agent": USER_AGENT, **headers})
        response = connection.getresponse()
        response.read()
        return (
            response.getheader("X-Tandem-Page-Cache")
            or response.getheader("X-Tandem-Dash-Cache")
            or "-"
        )
    finally:
        connection.close()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        connection.request("GET", path, headers={"User-Agent": USER_AGENT, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def wait_until_answering(server: Server, path: str) -> float:
    """Seconds until `path` answers 200; exits with the server's log if it never does."""
    started = time.monotonic()
    while time.monotonic() - started < READY_DEADLINE_S:
        if server.process.poll() is not None:
            sys.exit(f"{server.name} exited (code {server.process.returncode})\n{server.log()}")
        try:
            if get(server.port, path)[0] == 200:
                return time.monotonic() - started
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.25)
    sys.exit(f"{server.name} did not answer {path} in {READY_DEADLINE_S:.0f} s\n{server.log()}")


def sign_in(port: int, email: str, password: str) -> dict[str, str]:
    """Sign in through the real /login form (with its CSRF token); the Cookie header of the
    signed-in session."""
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    jar: dict[str, str] = {}

    def remember(response: http.client.HTTPResponse) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            pair = header.split(";", 1)[0]
            name, _, value = pair.partition("=")
            jar[name.strip()] = value.strip()

    def cookie() -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}

    try:
        connection.request("GET", "/login", headers={"User-Agent": USER_AGENT})
        response = connection.getresponse()
        page = response.read().decode()
        remember(response)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        if response.status != 200 or not token:
            sys.exit(f"/login answered {response.status} without a CSRF token")
        body = urllib.parse.urlencode(
            {"email": email, "password": password, "csrf_token": html.unescape(token.group(1))}
        )
        connection.request(
            "POST",
            "/login",
            body=body,
            headers={
                "User-Agent": USER_AGENT,
                "Content-Type": "application/x-www-form-urlencoded",
                **cookie(),
            },
        )
        response = connection.getresponse()
        answer = response.read().decode(errors="replace")
        remember(response)
        if response.status != 302:
            sys.exit(f"signing in as {email} answered {response.status}:\n{answer[:2000]}")
        # Follow the redirects to the dashboard as a browser does and keep the cookie each
        # answer sets: the first page after signing in settles the session (a fixed cookie
        # from the sign-in alone would have every request change the session, as no
        # browser's does).
        for _ in range(5):
            location = response.headers.get("Location")
            if response.status not in (301, 302, 303, 307, 308) or not location:
                break
            connection.request(
                "GET",
                urllib.parse.urlsplit(location).path or "/",
                headers={"User-Agent": USER_AGENT, **cookie()},
            )
            response = connection.getresponse()
            response.read()
            remember(response)
    finally:
        connection.close()
    return cookie()


# ---------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Catalogue:
    proposals: int
    offers: int
    publications_per_academic: int
    seed: int

    def wanted(self) -> dict[str, Any]:
        return {
            "marker": MARKER,
            "proposals": self.proposals,
            "offers": self.offers,
            "publications_per_academic": self.publications_per_academic,
            "seed": self.seed,
            "encoder": "stand-in",
        }


def prepare_catalogue(
    url: str, catalogue: Catalogue, fresh: bool, env: dict[str, str]
) -> tuple[float, bool]:
    """Migrate the bench database and make sure it holds `catalogue`: reuse it when the
    recorded catalogue matches (and its rows are there), else build it. Returns the seconds
    generating took (now, or when it was built) and whether it was built now."""
    marker = read_marker(url)
    wanted = catalogue.wanted()
    rows = catalogue_rows(url)
    recorded = {k: marker.get(k) for k in wanted} if marker else None
    if (
        not fresh
        and recorded == wanted
        and rows["proposal"] == catalogue.proposals
        and rows["offer"] == catalogue.offers
    ):
        print(
            f"reusing the catalogue generated {marker['generated_at']} in "
            f"{marker['seconds']:.0f} s (--fresh rebuilds it, e.g. after the generator changed)"
        )
        flask_command(["db", "upgrade"], env)
        return float(marker["seconds"]), False
    tables = public_tables(url)
    if marker is None and tables and not fresh:
        sys.exit(
            f"{url} has tables ({len(tables)}) that this benchmark did not make; use a new "
            "database, or pass --fresh to drop them and generate the catalogue in it."
        )
    why = "--fresh" if fresh else ("no catalogue yet" if marker is None else f"had {recorded}")
    print(f"generating the catalogue ({why}): this takes many minutes on a small machine")
    write_marker(url, None)
    empty_schema(url)
    flask_command(["db", "upgrade"], env)
    started = time.perf_counter()
    flask_command(
        [
            "catalogue",
            "generate",
            "--proposals",
            str(catalogue.proposals),
            "--offers",
            str(catalogue.offers),
            "--publications-per-academic",
            str(catalogue.publications_per_academic),
            "--seed",
            str(catalogue.seed),
            "--encoder",
            "stand-in",
        ],
        env,
    )
    seconds = time.perf_counter() - started
    generated_at = datetime.now(UTC).isoformat(timespec="seconds")
    write_marker(url, wanted | {"seconds": round(seconds, 1), "generated_at": generated_at})
    return seconds, True


@dataclass(frozen=True)
class Targets:
    offer_id: int
    proposal_id: int
    academic_email: str
    academic_proposals: int
    company_email: str
    company_offers: int
    queries: tuple[str, ...]


def choose_targets(url: str, secret_key: str, instance: Path, password: str) -> Targets:
    """An open offer and an open public proposal (the middle ones by id), the academic with
    the most proposals (given `password` and confirmed, so that the bench can sign in), and
    search queries from the generator's own topics."""
    _prepare_imports()
    os.environ["TANDEM_INSTANCE_PATH"] = str(instance)
    from flask_security import hash_password
    from sqlmodel import col, func, select

    from app import create_app
    from app.db import db_session
    from app.services.synthetic_vocabulary import AREAS
    from app.services.visibility import visible_offers, visible_proposals
    from models import Offer, Proposal, ProposalStatus, Role, User, utcnow

    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": secret_key,
            "TANDEM_QUEUE_THREADS": 0,
            "TANDEM_MODEL": "stand-in",
        }
    )
    with app.app_context():
        session = db_session()

        def middle(query: Any) -> int:
            ids = list(session.exec(query))
            if not ids:
                sys.exit("the catalogue has no open offer or open public proposal")
            return ids[len(ids) // 2]

        offer_id = middle(select(Offer.id).where(*visible_offers()).order_by(col(Offer.id)))
        proposal_id = middle(
            select(Proposal.id)
            .where(*visible_proposals(), Proposal.status == ProposalStatus.open)
            .order_by(col(Proposal.id))
        )
        owned = func.count(col(Proposal.id))
        academic, proposals = session.exec(
            select(User, owned)
            .join(Proposal, col(Proposal.author_id) == User.id)
            .where(User.role == Role.academic, col(User.active).is_(True))
            .group_by(col(User.id))
            .order_by(owned.desc(), col(User.id))
            .limit(1)
        ).one()
        listed = func.count(col(Offer.id))
        member, offers = session.exec(
            select(User, listed)
            .join(Offer, col(Offer.organisation_id) == User.organisation_id)
            .where(User.role == Role.company, col(User.active).is_(True))
            .group_by(col(User.id))
            .order_by(listed.desc(), col(User.id))
            .limit(1)
        ).one()
        for person in (academic, member):
            person.password_hash = hash_password(password)
            person.confirmed_at = person.confirmed_at or utcnow()
        email, member_email = academic.email, member.email
        session.commit()
    app.extensions["tandem.engine"].dispose()
    queries = tuple(area.topics[0] for area in AREAS[:: max(1, len(AREAS) // 3)][:3])
    return Targets(offer_id, proposal_id, email, proposals, member_email, offers, queries)


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class Url:
    """What one row of the table loads: GET `paths` in turn (one path, or a few search
    queries) on `server`, with `headers`."""

    label: str
    server: Server
    paths: tuple[str, ...]
    headers: dict[str, str]


LABEL = 40  # the label column


def public_urls(server: Server, targets: Targets, suffix: str = "") -> list[Url]:
    """The pages anyone may see, as a visitor who is not signed in sees them."""
    plain = {"User-Agent": USER_AGENT}
    searches = tuple("/search/?" + urllib.parse.urlencode({"q": q}) for q in targets.queries)
    offer, proposal = f"/offers/{targets.offer_id}", f"/proposals/{targets.proposal_id}"
    return [
        Url("/" + suffix, server, ("/",), plain),
        Url("/proposals/" + suffix, server, ("/proposals/",), plain),
        Url(offer + suffix, server, (offer,), plain),
        Url(proposal + suffix, server, (proposal,), plain),
        Url(f"/search/?q=… ({len(searches)} queries){suffix}", server, searches, plain),
    ]


def dashboard_urls(
    server: Server, signed_in: dict[str, str], member: dict[str, str], suffix: str
) -> list[Url]:
    """The two dashboards, each as its person's browser asks for it. /dashboard sends an
    academic to their proposals, each with its ranked offers, and a company's member to
    their organisation's offers, each with its ranked proposals."""
    plain = {"User-Agent": USER_AGENT}
    return [
        Url(
            f"/proposals/mine (academic, {suffix})", server, ("/proposals/mine",), plain | signed_in
        ),
        Url(f"/offers/mine (company, {suffix})", server, ("/offers/mine",), plain | member),
    ]


def page_urls(
    tandem: Server,
    bare: Server,
    targets: Targets,
    signed_in: dict[str, str],
    member: dict[str, str],
    rendered: Server | None = None,
) -> list[Url]:
    """What is measured, in order; the bare route first and last (the machine is shared:
    the two show how much the load from elsewhere moved during the run)."""
    plain = {"User-Agent": USER_AGENT}
    return [
        Url("bare JSON (before)", bare, ("/bare",), plain),
        *public_urls(tandem, targets),
        *dashboard_urls(tandem, signed_in, member, "dashboard"),
        *(public_urls(rendered, targets, " (rendered)") if rendered is not None else []),
        # The same sessions on the server with the caches off: what rendering a page costs.
        *(dashboard_urls(rendered, signed_in, member, "rendered") if rendered is not None else []),
        Url("bare JSON (after)", bare, ("/bare",), plain),
    ]


def check_every_url(urls: list[Url]) -> dict[str, float]:
    """One request to each path, which must answer 200 (else exit with what it answered);
    the slowest of a row's first requests (s), before any load: the first request a web
    process serves for a page may include work later ones skip (the first search loads
    the catalogue's vectors)."""
    print("\n## every URL answers 200 before it is measured (the time of that first request)")
    failed = []
    first_s: dict[str, float] = {}
    for url in urls:
        for path in url.paths:
            started = time.perf_counter()
            status, body = get(url.server.port, path, url.headers)
            took = time.perf_counter() - started
            first_s[url.label] = max(first_s.get(url.label, 0.0), took)
            print(
                f"{status}  {urllib.parse.unquote_plus(path):<{LABEL + 20}} {took * 1000:9.1f} ms"
            )
            if status != 200:
                failed.append(f"{path}: {status}\n{body[:1500]}")
    if failed:
        sys.exit("not every URL answers 200:\n" + "\n".join(failed))
    return first_s


def window(duration: float, longest: float, first_s: float, connections: int) -> float:
    """Seconds to measure a URL: `duration`, or longer (up to `longest`) for a page so slow
    that `connections` requests sharing this machine's cores would not finish within it
    (twice the time that takes, from the first request's time)."""
    cores = os.cpu_count() or 1
    return max(duration, min(longest, 2 * first_s * connections / cores))


def print_machine() -> None:
    _prepare_imports()
    from bench.matching import row, section_machine

    section_machine(argparse.Namespace())
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    except OSError:
        model = None
    row("CPU model", model.group(1) if model else "unknown")
    flags = set()
    if model:
        flags_line = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        flags = set(flags_line.group(1).split()) if flags_line else set()
    amx = sorted(f for f in flags if f.startswith("amx"))
    row("AMX", " ".join(amx) or "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proposals", type=int, default=10_000)
    parser.add_argument("--offers", type=int, default=2_000)
    parser.add_argument("--publications-per-academic", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="rebuild the catalogue")
    parser.add_argument(
        "--duration", type=float, default=4.0, help="seconds measured per URL and round"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds: each URL is measured once per round, every URL in turn; the table gives "
        "the median of the rounds and the worst",
    )
    parser.add_argument(
        "--longest", type=float, default=30.0, help="most seconds measured for a slow page"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load first")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--web-concurrency", type=int, default=2)
    parser.add_argument(
        "--client",
        choices=("auto", "python", "wrk"),
        default="auto",
        help="load generator: wrk when installed (auto), or this script's own",
    )
    parser.add_argument(
        "--sizes",
        default="42x12,10000x2000",
        help="catalogue sizes, PROPOSALSxOFFERS, comma-separated (42x12 is the demo's size)",
    )
    parser.add_argument(
        "--no-rendered",
        action="store_true",
        help="skip the public pages on a server with the page cache off",
    )
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the servers' logs (each request with its duration in ms) after a good run",
    )
    parser.add_argument(
        "--only",
        default="",
        help="measure only the rows whose label holds one of these comma-separated words "
        "(e.g. search), beside the bare route",
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="generate (or check) the catalogues and stop, measuring nothing",
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    _prepare_imports()

    print_machine()
    wrk = shutil.which("wrk")
    if args.client == "wrk" and not wrk:
        sys.exit("--client wrk: wrk is not installed (apt-get install wrk)")
    for size in args.sizes.split(","):
        proposals, _, offers = size.strip().partition("x")
        catalogue = Catalogue(
            int(proposals), int(offers), args.publications_per_academic, args.seed
        )
        measure_size(args, catalogue, wrk)


def database_url(catalogue: Catalogue) -> str:
    """`TANDEM_BENCH_DATABASE_URL` for the 10,000 x 2,000 catalogue when set, else a database
    of this benchmark's own per size (kept between runs)."""
    url = os.environ.get("TANDEM_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    if (catalogue.proposals, catalogue.offers) == (10_000, 2_000):
        return url
    base, _, _name = url.rpartition("/")
    return f"{base}/tandem_bench_load_{catalogue.proposals}x{catalogue.offers}"


def measure_size(args: argparse.Namespace, catalogue: Catalogue, wrk: str | None) -> None:
    """One catalogue size: prepared, served, every URL loaded, the table printed."""
    from bench.matching import load_average

    url = database_url(catalogue)
    print(
        f"\n# {catalogue.proposals:,} proposals x {catalogue.offers:,} offers\n"
        f"\n## catalogue on {re.sub(r'//[^@/]*@', '//', url)}"
    )
    ensure_database(url)
    workdir = Path(tempfile.mkdtemp(prefix="tandem-bench-load-"))
    (workdir / "logs").mkdir()
    secret_key = secrets.token_hex(32)
    env = _server_env(url, secret_key, workdir / "instance")
    env["WEB_CONCURRENCY"] = str(args.web_concurrency)
    servers: list[Server] = []
    load: PythonLoad | WrkLoad | None = None
    ok = False
    try:
        generation_s, generated_now = prepare_catalogue(url, catalogue, args.fresh, env)
        rows = catalogue_rows(url)
        print("rows: " + ", ".join(f"{n:,} {table}" for table, n in rows.items()))
        print(f"VACUUM ANALYZE (as autovacuum would): {vacuum_analyze(url):.1f} s")
        if args.prepare_only:
            print(f"catalogue generation: {generation_s:.0f} s")
            ok = True
            return
        password = secrets.token_urlsafe(18)
        targets = choose_targets(url, secret_key, workdir / "instance", password)

        if wrk and args.client != "python":
            load = WrkLoad(wrk, args.connections, threads=min(2, os.cpu_count() or 1))
        else:
            load = PythonLoad(args.connections, processes=min(2, os.cpu_count() or 1))

        print(f"\n## servers (gunicorn.conf.py, WEB_CONCURRENCY={args.web_concurrency})")
        tandem = start_gunicorn("tandem", [], env, workdir / "logs")
        servers.append(tandem)
        bare_app = ["--pythonpath", str(ROOT / "bench"), "_bare_app:app"]
        bare = start_gunicorn("bare", bare_app, env, workdir / "logs")
        servers.append(bare)
        rendered = None
        if not args.no_rendered:
            uncached = {**env, "TANDEM_PAGE_CACHE_SECONDS": "0"}
            rendered = start_gunicorn("tandem-rendered", [], uncached, workdir / "logs")
            servers.append(rendered)
        started = wait_until_answering(tandem, "/readyz")
        print(f"Tandem on {HOST}:{tandem.port}: ready (/readyz 200) after {started:.1f} s")
        started = wait_until_answering(bare, "/bare")
        print(f"bare Flask on {HOST}:{bare.port}: answering after {started:.1f} s")
        if rendered is not None:
            started = wait_until_answering(rendered, "/readyz")
            print(f"Tandem, page cache off, on {HOST}:{rendered.port}: ready after {started:.1f} s")
        signed_in = sign_in(tandem.port, targets.academic_email, password)
        print(
            f"signed in as {targets.academic_email} ({targets.academic_proposals} proposals) "
            "through /login"
        )
        member = sign_in(tandem.port, targets.company_email, password)
        print(
            f"signed in as {targets.company_email} ({targets.company_offers} offers of their "
            "organisation) through /login"
        )
        urls = page_urls(tandem, bare, targets, signed_in, member, rendered)
        if args.only:
            wanted = [word.strip() for word in args.only.split(",") if word.strip()]
            urls = [
                u for u in urls if u.label.startswith("bare") or any(w in u.label for w in wanted)
            ]
        first_s = check_every_url(urls)

        print(
            f"\n## load: {load.name}, {args.connections} connections, {args.warmup:g} s "
            f"warm-up, then {args.repeats} rounds of {args.duration:g} s per URL (up to "
            f"{args.longest:g} s for slow pages)"
        )
        print(f"load average before: {load_average()}")
        table = [Row(url, [], first_s[url.label]) for url in urls]
        for round_number in range(1, args.repeats + 1):
            print(f"round {round_number} of {args.repeats}")
            for row in table:
                phase = time.monotonic()
                port = row.url.server.port
                if args.warmup > 0 and round_number == 1:
                    load.run(port, row.url.paths, row.url.headers, args.warmup)
                    wait_until_idle(row.url.server)  # the window starts with no request in flight
                seconds = window(args.duration, args.longest, row.first_s, args.connections)
                measured = load.run(port, row.url.paths, row.url.headers, seconds)
                wait_until_idle(row.url.server)
                row.windows.append(measured)
                if round_number == args.repeats:
                    row.cache = cache_state(port, row.url.paths[0], row.url.headers)
                print(
                    f"  {row.url.label:<{LABEL}} {measured.per_second:9.2f} req/s over "
                    f"{seconds:.0f} s ({time.monotonic() - phase:.0f} s with the warm-up and "
                    "requests in flight)",
                    flush=True,
                )
        print(f"load average after: {load_average()}")
        for server in servers:
            if server.process.poll() is not None:
                sys.exit(f"{server.name} died during the run\n{server.log()}")
        print_table(table, load.name)
        print(
            f"\ncatalogue generation ({catalogue.proposals:,} proposals x "
            f"{catalogue.offers:,} offers x {catalogue.publications_per_academic} "
            f"publications per academic, stand-in encoder, PostgreSQL): {generation_s:.0f} s"
            + ("" if generated_now else " (when the kept database was built)")
        )
        ok = True
    finally:
        for server in servers:
            server.stop()
        if load is not None:
            load.close()
        if (ok and not args.keep_logs) or not servers:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"server logs kept in {workdir / 'logs'}")


@dataclass
class Row:
    """One URL of the table: its windows (one per round), its first request's time (before
    any load) and what the page cache said right after the last window (a page in the last
    tenth of its life says `miss` to the one request that renews it)."""

    url: Url
    windows: list[Measured]
    first_s: float
    cache: str = "-"


def _ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("nan")


def print_table(rows: list[Row], client: str) -> None:
    """Per URL, over its windows: the median requests/s (answered 200 within the window), the
    median and the lowest ratio to the bare route, the median p50 and p99 latency, the median
    and the highest p99 as a multiple of the bare route's, how many requests there were in
    all (few: read p50/p99 with care), errors, the first request's time, the load generator's
    own CPU, and what the page cache did after the last window.

    Each window's ratios are to the bare route's two rows (before and after) in the same
    round, so that a slower or busier minute of the machine weighs on both sides alike; the
    median of the rounds is the figure, and the lowest ratio and highest p99 multiple say
    what the worst window read."""
    bare = [row for row in rows if row.url.label.startswith("bare")]
    rounds = min(len(row.windows) for row in rows)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    bare_rate = [mean([b.windows[r].per_second for b in bare]) for r in range(rounds)]
    bare_p99 = [mean([b.windows[r].p99_ms for b in bare]) for r in range(rounds)]
    print(
        f"\n## results ({rounds} rounds, medians; x bare, p99 x: to the mean of the bare JSON "
        f"rows of the same round; lowest/highest: the worst round; client: {client})"
    )
    header = (
        f"{'URL':<{LABEL}} {'req/s':>8} {'x bare':>7} {'lowest':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'p99 x':>6} {'highest':>7} {'n':>6} {'errors':>6} {'first ms':>9} "
        f"{'client':>7} {'cache':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        windows = row.windows[:rounds]
        answered = [w for w in windows if w.requests]
        ratios = [_ratio(w.per_second, bare_rate[r]) for r, w in enumerate(windows)]
        p99_ratios = [_ratio(w.p99_ms, bare_p99[r]) for r, w in enumerate(windows) if w.requests]
        if answered:
            p50 = f"{statistics.median([w.p50_ms for w in answered]):7.1f}"
            p99 = f"{statistics.median([w.p99_ms for w in answered]):7.1f}"
            p99_x = f"{statistics.median(p99_ratios):6.2f} {max(p99_ratios):7.2f}"
        else:
            p50, p99, p99_x = f"{'-':>7}", f"{'-':>7}", f"{'-':>6} {'-':>7}"
        seconds = sum(w.seconds for w in windows)
        client_cpu = sum(w.client_cpu_s for w in windows) / seconds
        print(
            f"{row.url.label:<{LABEL}} {statistics.median([w.per_second for w in windows]):8.2f} "
            f"{statistics.median(ratios):7.4f} {min(ratios):7.4f} {p50} {p99} {p99_x} "
            f"{sum(w.requests for w in windows):6d} {sum(w.errors for w in windows):6d} "
            f"{row.first_s * 1000:9.1f} {client_cpu:6.2f}c {row.cache:>6}"
        )
        kinds = sum((Counter(w.error_kinds) for w in windows), Counter())
        if kinds:
            print(f"{'':<{LABEL}} errors: {dict(kinds)}")


if __name__ == "__main__":
    main()

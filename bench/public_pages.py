"""Requests per second of the public pages against /healthz, on one server in one run.

    .venv/bin/python bench/public_pages.py [--database-url URL] [--keep] [--client wrk|python]

1. Builds a fresh PostgreSQL database (dropped first if it exists): migrate, load_demo,
   then 500 active series over the demo libraries, 10,000 meetings materialised from their
   rules (a few cancelled or moved, as the calendar feeds write them) and a few thousand
   RSVPs, so that pages count seats.
2. Starts gunicorn on loopback the way docker/entrypoint.sh does in production (DEBUG off,
   whitenoise's compressed manifest storage, sync workers), with two workers.
3. Loads /healthz (a view that does nothing), the public meetup list, a series page and
   the all-public .ics feed (full responses, the same asking for gzip as calendar apps
   do, then conditional requests with its ETag),
   each for a fixed time after a warm-up, with a fixed number of keep-alive clients: wrk
   if it is installed, else threads of http.client. /healthz runs before and after each
   page, so that each page is compared with the server's pace at that moment.
4. Prints each URL's requests per second, median and 95th percentile latency and its
   ratio to /healthz (the mean of the runs on either side). The aim is at least 0.5.

A measurement, not a test: it exits 0 whatever the figures are, and non-zero only when the
setup fails. The database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import time as clock
from datetime import timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/outreach_bench"
AIM = 0.5

# Rules a coordinator can pick in the series form (meetings.recurrence.Rule), Zurich time.
RULES = [
    "FREQ=MONTHLY;BYDAY=+1TH",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;BYDAY=+2WE",
    "FREQ=MONTHLY;BYDAY=+3SA",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
    "FREQ=WEEKLY;BYDAY=TH",
]
KINDS = ["Wikipermanence", "Atelier Wikipédia", "Café Wikimedia Commons", "Wiki-Treff"]
START_TIMES = [clock(12, 0), clock(14, 0), clock(17, 30), clock(18, 30)]
# The wrk script: one line of figures when the run is done (latencies in microseconds).
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %.0f %.0f %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="outreach-bench-"))
    server_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": args.database_url,
        # Production as docker-compose.yml runs it on plain http (see outreach/settings.py).
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-dummy-secret-key-signs-nothing-that-leaves-this-machine",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        "SECURE_COOKIES": "0",
        "BENCH_STATIC_ROOT": str(scratch / "static"),
        "LOG_LEVEL": "WARNING",
    }
    for item in args.env:
        key, _, value = item.partition("=")
        server_env[key] = value
    # This process builds the data with the same settings as the server it then starts.
    os.environ.update(server_env)
    sys.path.insert(0, str(BASE_DIR))
    server = None
    created = False
    try:
        database_create(args.database_url)
        created = True
        slug = populate(args)
        print(f"setup: {time.monotonic() - started:.1f} s in all")
        server, port = server_start(server_env, workers=args.workers, log=scratch / "gunicorn.log")
        measure_all(args, port=port, series_slug=slug, scratch=scratch)
    except SetupError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server_stop(server)
        if created:
            database_close()
            if args.keep:
                print(f"database kept: {args.database_url}")
            else:
                database_drop(args.database_url)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true", help="leave the database for inspection")
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--meetings-per-series", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--duration", type=int, default=5, help="seconds measured per URL")
    parser.add_argument("--warmup", type=int, default=1, help="seconds before measuring")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one more setting for the server, e.g. --env CONN_MAX_AGE=60",
    )
    return parser.parse_args()


class SetupError(Exception):
    """The benchmark could not be set up: nothing was measured."""


@contextmanager
def step(label: str) -> Iterator[None]:
    started = time.monotonic()
    print(f"{label}…", end=" ", flush=True)
    try:
        yield
    except SetupError:
        print("failed")
        raise
    except Exception as error:
        print("failed")
        raise SetupError(f"{label}: {error!r}") from error
    print(f"{time.monotonic() - started:.1f} s", flush=True)


# The database -------------------------------------------------------------------------------


def _maintenance_connection(database_url: str):
    import psycopg

    url = urlsplit(database_url)
    return psycopg.connect(
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname="postgres",
        autocommit=True,
    )


def database_create(database_url: str) -> None:
    from psycopg import sql

    name = urlsplit(database_url).path.lstrip("/")
    if not name or name in ("postgres", "template0", "template1"):
        raise SetupError(f"refusing to drop and recreate the database {name!r}")
    with (
        step(f"database {name}: drop and create"),
        _maintenance_connection(database_url) as connection,
    ):
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_close() -> None:
    if "django" in sys.modules:
        from django.db import connections

        connections.close_all()


def database_drop(database_url: str) -> None:
    from psycopg import sql

    name = urlsplit(database_url).path.lstrip("/")
    with _maintenance_connection(database_url) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    print(f"database {name} dropped")


# The data -----------------------------------------------------------------------------------


def populate(args: argparse.Namespace) -> str:
    """Migrate, load the demo and the bench's series; return the slug of a series to read."""
    import django
    from django.core.management import call_command

    with step("migrate"):
        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
    with step("load_demo"):
        out = StringIO()
        call_command("load_demo", stdout=out)
    print(f"  {out.getvalue().strip()}")
    with step(f"{args.series} series, {args.series * args.meetings_per_series} meetings, RSVPs"):
        counts = series_add(count=args.series, meetings_per_series=args.meetings_per_series)
    print("  " + ", ".join(f"{n} {label}" for label, n in counts.items() if label != "slug"))
    with step("vacuum analyze"):
        # Planner statistics, as autovacuum keeps them on a database that grew over time:
        # right after a bulk load the planner would guess one row per table.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    with step("collectstatic"):
        call_command("collectstatic", verbosity=0, interactive=False)
    return counts["slug"]


def series_add(*, count: int, meetings_per_series: int) -> dict:
    """Active series over the demo libraries, each with its meetings and some RSVPs.

    The meetings are the rule's occurrences from two months ago on (most are upcoming), as
    ``meetings_materialise`` would have written them over time: ``original_start`` is the
    rule's start. A few are cancelled or moved, so the feeds carry EXDATEs and overrides.
    """
    from django.db import transaction
    from django.utils import timezone
    from django.utils.text import slugify

    from libraries.models import Library
    from meetings.models import RSVP, Meeting, MeetupSeries
    from meetings.recurrence import occurrences

    rng = random.Random("outreach-bench-1")
    now = timezone.now()
    libraries = list(Library.objects.select_related("region").order_by("pk"))
    if not libraries:
        raise SetupError("load_demo created no library")
    series_rows = []
    for i in range(count):
        library = libraries[i % len(libraries)]
        kind = KINDS[i % len(KINDS)]
        online = rng.random() < 0.2
        series_rows.append(
            MeetupSeries(
                title=f"{kind} {library.city} {i + 1}",
                slug=f"{slugify(kind)}-{slugify(library.city)}-{i + 1}",
                host_library=library,
                venue="Salle de lecture, premier étage. Entrée par la cour.",
                language=rng.choice(library.language_list or ["fr"]),
                time_zone="Europe/Zurich",
                rrule=RULES[i % len(RULES)],
                start_date=(now - timedelta(days=rng.randint(200, 600))).date(),
                start_time=rng.choice(START_TIMES),
                duration=timedelta(hours=rng.choice([1.5, 2, 2, 3])),
                capacity=rng.choice([None, 8, 12, 12, 20, 30]),
                online_url=f"https://meet.example.org/bench-{i + 1}" if online else "",
                description=(
                    "Venez découvrir Wikipédia et Wikimedia Commons avec des bénévoles : "
                    "créer un compte, corriger un article, ajouter une référence ou une photo "
                    "de votre région."
                ),
                audience="Tout public, débutants bienvenus.",
                what_to_bring="Un ordinateur portable si vous en avez un.",
                status=MeetupSeries.Status.ACTIVE,
            )
        )
    counts: dict = {}
    with transaction.atomic():
        series_rows = MeetupSeries.objects.bulk_create(series_rows)
        meetings = []
        for series in series_rows:
            starts = occurrences(
                rrule=series.rrule,
                start_date=series.start_date,
                start_time=series.start_time,
                time_zone=series.time_zone,
                after=now - timedelta(days=60),
                before=now + timedelta(days=5 * 365),
            )
            cancelled = rng.randrange(meetings_per_series) if rng.random() < 0.3 else None
            moved = rng.randrange(meetings_per_series) if rng.random() < 0.2 else None
            for n, original in zip(range(meetings_per_series), starts, strict=False):
                start = original + timedelta(days=1) if n == moved else original
                meetings.append(
                    Meeting(
                        series=series,
                        host_library_id=series.host_library_id,
                        original_start=original,
                        start=start,
                        end=start + series.duration,
                        time_zone=series.time_zone,
                        capacity=series.capacity,
                        online_url=series.online_url,
                        cancelled_at=now if n == cancelled else None,
                        cancel_reason="Bibliothèque fermée" if n == cancelled else "",
                    )
                )
        meetings = Meeting.objects.bulk_create(meetings, batch_size=2000)
        rsvps = []
        for meeting in meetings:
            if rng.random() >= 0.25:
                continue
            for k in range(rng.randint(1, 3)):
                rsvps.append(
                    RSVP(
                        meeting=meeting,
                        name=f"Visiteur {meeting.pk}-{k}",
                        email=f"visiteur-{meeting.pk}-{k}@bench.example.org",
                        answer=rng.choices(RSVP.Answer.values, weights=[70, 15, 15])[0],
                        role=rng.choices(RSVP.Role.values, weights=[85, 5, 5, 5])[0],
                        guests=rng.choices([0, 1, 2], weights=[80, 15, 5])[0],
                    )
                )
        RSVP.objects.bulk_create(rsvps, batch_size=2000)
    counts["series"] = len(series_rows)
    counts["meetings"] = len(meetings)
    counts["upcoming"] = sum(1 for m in meetings if m.end >= now and m.cancelled_at is None)
    counts["RSVPs"] = len(rsvps)
    counts["slug"] = series_rows[0].slug
    return counts


# The server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_start(env: dict, *, workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    """gunicorn as docker/entrypoint.sh starts it, on a free loopback port."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "outreach.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "60",
        "--error-logfile",
        str(log),
    ]
    with step(f"gunicorn, {workers} workers, on 127.0.0.1:{port}"):
        server = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (OSError, http.client.HTTPException):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server_stop(server)
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise SetupError(f"gunicorn did not answer /healthz:\n{tail}")
            time.sleep(0.2)
    return server, port


def server_stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()  # SIGTERM: gunicorn's graceful shutdown
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# The measurement ----------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    requests: int
    seconds: float
    median_ms: float
    p95_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def fetch(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def measure_all(args: argparse.Namespace, *, port: int, series_slug: str, scratch: Path) -> None:
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    elif client == "wrk" and not shutil.which("wrk"):
        print("wrk is not installed: measuring with the Python client")
        client = "python"

    feed = "/calendar/meetups.ics"
    status, headers, body = fetch(port, feed)
    if status != 200:
        raise SetupError(f"{feed} answered {status}")
    etag = headers.get("ETag")
    if not etag:
        raise SetupError(f"{feed} has no ETag")
    healthz = ("/healthz", "/healthz", {}, 200)
    pages = [
        ("/meetups/", "/meetups/", {}, 200),
        (f"/meetups/{series_slug}/", f"/meetups/{series_slug}/", {}, 200),
        (feed, feed, {}, 200),
        # Calendar apps ask for gzip: what they get, compressed or not.
        (f"{feed} (gzip)", feed, {"Accept-Encoding": "gzip"}, 200),
        (f"{feed} (If-None-Match)", feed, {"If-None-Match": etag}, 304),
    ]
    for label, path, extra, expected in [healthz, *pages]:
        got = fetch(port, path, extra)[0]
        if got != expected:
            raise SetupError(f"{label} answered {got}, not {expected}")

    print(
        f"\nload: {client}, {args.clients} connections, {args.warmup} s warm-up then "
        f"{args.duration} s per URL, /healthz before and after each page; gunicorn "
        f"{args.workers} sync workers; {os.cpu_count()} CPUs shared by server, database and "
        "client"
    )

    def measure(target: tuple) -> Result:
        label, path, extra, _expected = target
        if client == "wrk":
            result = measure_wrk(label, port, path, extra, args, scratch)
        else:
            result = measure_python(label, port, path, extra, args)
        print(f"  {label}: {result.rate:.1f} req/s", flush=True)
        # wrk closes its connections with requests still queued in the server, which would
        # go on working on them during the next run: give it the time to finish.
        time.sleep(min(10.0, 1.5 * result.p95_ms / 1000))
        return result

    # The yardstick is measured on either side of each page: on a shared machine the load
    # of other processes drifts during a run, and each page is compared with its neighbours.
    yardsticks = [measure(healthz)]
    results = []
    for target in pages:
        result = measure(target)
        yardsticks.append(measure(healthz))
        results.append((result, statistics.mean(r.rate for r in yardsticks[-2:])))

    rates = [r.rate for r in yardsticks]
    summary = Result(
        f"/healthz ({len(yardsticks)} runs)",
        sum(r.requests for r in yardsticks),
        sum(r.seconds for r in yardsticks),
        statistics.median(r.median_ms for r in yardsticks),
        statistics.median(r.p95_ms for r in yardsticks),
        sum(r.errors for r in yardsticks),
    )
    rows = [(summary, summary.rate), *results]
    width = max(len(r.label) for r, _ in rows)
    print(
        f"\n{'URL':<{width}}  {'requests':>8}  {'req/s':>8}  {'median':>9}  {'p95':>9}  "
        f"{'ratio':>5}  {'errors':>6}"
    )
    for r, base in rows:
        print(
            f"{r.label:<{width}}  {r.requests:>8}  {r.rate:>8.1f}  {r.median_ms:>6.1f} ms  "
            f"{r.p95_ms:>6.1f} ms  {r.rate / base if base else 0:>5.3f}  {r.errors:>6}"
        )
    print(
        f"/healthz runs: {', '.join(f'{rate:.0f}' for rate in rates)} req/s "
        f"(lowest {min(rates) / max(rates):.0%} of highest)"
    )
    print(
        f"\naim: ratio >= {AIM} (requests per second of the URL / the mean of the /healthz "
        "runs just before and just after it)"
    )
    for r, base in results:
        ratio = r.rate / base if base else 0.0
        print(f"  {'PASS ' if ratio >= AIM else 'BELOW'}  {ratio:.3f}  {r.label}")
    print(f"\nsize of {feed}: {len(body):,} bytes ({body.count(b'BEGIN:VEVENT')} VEVENTs)")
    _status, headers, gzipped = fetch(port, feed, {"Accept-Encoding": "gzip"})
    encoding = headers.get("Content-Encoding", "none")
    print(f"  with Accept-Encoding: gzip: {len(gzipped):,} bytes (Content-Encoding: {encoding})")


def measure_wrk(
    label: str, port: int, path: str, headers: dict, args: argparse.Namespace, scratch: Path
) -> Result:
    script = scratch / "report.lua"
    script.write_text(WRK_REPORT)
    command = ["wrk", "-t", str(min(2, args.clients)), "-c", str(args.clients), "--timeout", "10s"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    url = f"http://127.0.0.1:{port}{path}"
    timeout = args.warmup + args.duration + 30
    try:
        subprocess.run(
            [*command, "-d", f"{args.warmup}s", url],
            capture_output=True,
            check=True,
            timeout=timeout,
        )
        run = subprocess.run(
            [*command, "-d", f"{args.duration}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        )
    except subprocess.SubprocessError as error:
        raise SetupError(f"wrk failed on {label}: {error}") from error
    line = next((row for row in run.stdout.splitlines() if row.startswith("BENCH ")), None)
    if line is None:
        raise SetupError(f"wrk printed no figures:\n{run.stdout}{run.stderr}")
    requests, micros, median, p95, errors = (int(v) for v in line.split()[1:])
    return Result(label, requests, micros / 1e6, median / 1000, p95 / 1000, errors)


def measure_python(
    label: str, port: int, path: str, headers: dict, args: argparse.Namespace
) -> Result:
    """Threads of http.client: the same connection while the server keeps it open."""

    def run(seconds: float) -> tuple[list[float], int, float]:
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        start = time.monotonic()
        deadline = start + seconds

        def client() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine: list[float] = []
            failed = 0
            while (now := time.monotonic()) < deadline and len(mine) < 1_000_000:
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    if response.status >= 400:
                        failed += 1
                    if response.will_close:
                        connection.close()
                except (OSError, http.client.HTTPException):
                    failed += 1
                    connection.close()
                    continue
                mine.append(time.monotonic() - now)
            connection.close()
            with lock:
                latencies.extend(mine)
                errors[0] += failed

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return latencies, errors[0], time.monotonic() - start

    run(args.warmup)
    latencies, errors, seconds = run(args.duration)
    if len(latencies) < 2:
        return Result(label, len(latencies), seconds, 0.0, 0.0, errors)
    latencies.sort()
    p95 = statistics.quantiles(latencies, n=20)[-1]
    return Result(
        label, len(latencies), seconds, statistics.median(latencies) * 1000, p95 * 1000, errors
    )


if __name__ == "__main__":
    sys.exit(main())

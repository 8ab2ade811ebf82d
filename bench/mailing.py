"""Messages per second of a campaign sent by real Celery workers, against raw smtplib.

    .venv/bin/python bench/mailing.py [--database-url URL] [--keep] [--workers N]

1. Starts an SMTP sink (aiosmtpd) on loopback in a process of its own, so that it does not
   share the benchmark's interpreter lock. It counts what it receives per recipient (RCPT
   TO) and keeps the bytes of each message.
2. Builds a fresh PostgreSQL database (dropped first if it exists), migrates it, and adds
   5,000 librarians with an address each at 500 libraries in five regions, and one
   invitation campaign to every librarian (``filter_librarians``) with a French and a
   German message using ``{{ recipient }}``, ``{{ library }}`` and ``{{ answer_links }}``.
3. Starts real Celery workers (``celery -A outreach worker``, prefork) against a Redis
   database of its own (flushed), pacing off (``CAMPAIGNS_RATE_PER_SECOND=0``), then
   launches the campaign from this process as a coordinator does (``campaign_launch``: the
   deliveries in bulk, then ``campaign_dispatch_task`` through the broker on commit), and
   waits for the campaign to be ``sent``.
4. Measures the machine's raw rate in the same run, before and after the campaign: the
   campaign's messages (before: as the app previews them, one per language addressed to
   each librarian; after: the very bytes the sink received) sent to the same sink with
   ``smtplib`` over one connection. The campaign is compared with the mean of the two.
5. Prints the deliveries created per second (and the SQL statements that took), the
   messages sent per second end to end (from the launch to the campaign's ``finished_at``),
   the raw rate, their ratio, and the addresses that received nothing (lost) or more than
   one message (duplicated). The aim: a ratio of at least 0.5, none lost, none duplicated.
   Then, to tell where the time goes: the CPU used per message by the workers, the sink
   and the rest of the machine, and one batch sent by ``batch_send`` in this process, its
   SQL statements counted and its time split between SQL, SMTP and the rest.

A measurement, not a test: it exits 0 whatever the figures are, and non-zero only when the
setup fails. The database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.public_pages import (  # noqa: E402  the benchmarks share their plumbing
    SetupError,
    database_close,
    database_create,
    database_drop,
    free_port,
    step,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/outreach_bench_mailing"
# A Redis database of the benchmark's own: flushed at the start and at the end.
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/9"
QUEUE = "bench-mailing"
AIM = 0.5  # issue 13: at least half the raw rate
FROM_EMAIL = "Wikimedia CH <outreach@example.org>"
SITE_URL = "https://outreach.example.org"

REGIONS = [
    # name, slug, language, libraries' languages, city names
    ("Vaud", "vaud", "fr", "fr", ["Lausanne", "Morges", "Nyon", "Yverdon", "Vevey"]),
    ("Genève", "geneve", "fr", "fr", ["Genève", "Carouge", "Meyrin", "Vernier", "Onex"]),
    ("Zürich", "zurich", "de", "de", ["Zürich", "Winterthur", "Uster", "Dübendorf", "Horgen"]),
    ("Bern", "bern", "de", "de", ["Bern", "Biel", "Thun", "Köniz", "Burgdorf"]),
    ("Fribourg", "fribourg", "fr", "de,fr", ["Fribourg", "Bulle", "Murten", "Düdingen"]),
]
FIRST_NAMES = ["Anne", "Luc", "Marie", "Jonas", "Sophie", "Lukas", "Claire", "Nina", "Paul"]
LAST_NAMES = ["Dubois", "Martin", "Meier", "Favre", "Keller", "Rochat", "Huber", "Blanc"]
MESSAGES = {
    "fr": (
        "Wikipédia à {{ library }} : un atelier gratuit ?",
        "Bonjour {{ recipient }},\n\n"
        "Wikimedia CH propose aux bibliothèques de Suisse romande des ateliers gratuits pour "
        "découvrir Wikipédia et Wikimedia Commons : créer un compte, corriger un article, "
        "ajouter une référence tirée de vos collections ou une photo de votre région. Nos "
        "bénévoles viennent avec le matériel ; il suffit d'une salle et d'une connexion.\n\n"
        "Est-ce que {{ library }} aimerait en accueillir un cet automne ? Le programme est "
        "décrit sur https://wikimedia.ch/fr/bibliotheques/ateliers/\n\n"
        "{{ answer_links }}\n\n"
        "Avec nos meilleures salutations,\nL'équipe Communautés de Wikimedia CH\n",
    ),
    "de": (
        "Wikipedia in der {{ library }}: ein kostenloser Workshop?",
        "Guten Tag {{ recipient }}\n\n"
        "Wikimedia CH bietet Bibliotheken in der Deutschschweiz kostenlose Workshops an, um "
        "Wikipedia und Wikimedia Commons kennenzulernen: ein Konto eröffnen, einen Artikel "
        "verbessern, einen Beleg aus Ihren Beständen oder ein Foto Ihrer Region hinzufügen. "
        "Unsere Freiwilligen bringen alles mit; es braucht nur einen Raum und WLAN.\n\n"
        "Möchte die {{ library }} diesen Herbst einen solchen Workshop durchführen? Das "
        "Programm finden Sie unter https://wikimedia.ch/de/bibliotheken/workshops/\n\n"
        "{{ answer_links }}\n\n"
        "Freundliche Grüsse\nDas Community-Team von Wikimedia CH\n",
    ),
}


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="outreach-bench-mailing-"))
    sink = None
    workers: list[subprocess.Popen] = []
    created = False
    try:
        # The sink is forked before anything else is loaded: a small process of its own.
        with step("SMTP sink (aiosmtpd, its own process)"):
            sink = Sink.start()
        print(f"  listening on 127.0.0.1:{sink.port}")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "outreach.settings",
            "DATABASE_URL": args.database_url,
            "CELERY_BROKER_URL": args.broker_url,
            "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
            "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
            "SITE_URL": SITE_URL,
            "DEFAULT_FROM_EMAIL": FROM_EMAIL,
            # As docker-compose.yml runs the workers.
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-dummy-secret-key-signs-nothing-that-leaves-this-machine",
            "LOG_LEVEL": "WARNING",
            # Pacing off: as fast as the server takes them.
            "CAMPAIGNS_RATE_PER_SECOND": "0",
            "CAMPAIGNS_BATCH_SIZE": str(args.batch_size),
            "CAMPAIGNS_WORKER_CHAINS": str(args.chains),
        }
        env.pop("CI", None)
        for item in args.env:
            key, _, value = item.partition("=")
            env[key] = value
        # This process launches the campaign with the same settings as the workers; the
        # broker is set before Django is, so the dispatch goes through Redis.
        os.environ.update(env)
        sys.path.insert(0, str(BASE_DIR))
        with step(f"broker {args.broker_url}: flush"):
            broker_flush(args.broker_url)
        database_create(args.database_url)
        created = True
        campaign_id = populate(args)
        print(f"setup: {time.monotonic() - started:.1f} s in all")
        workers = workers_start(args, env, scratch)
        measure(args, campaign_id=campaign_id, sink=sink, workers=workers, scratch=scratch)
    except SetupError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    finally:
        workers_stop(workers)
        if sink is not None:
            sink.stop()
        if created:
            database_close()
            if args.keep:
                print(f"database kept: {args.database_url}")
            else:
                database_drop(args.database_url)
        with contextlib.suppress(Exception):
            broker_flush(args.broker_url)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--broker-url", default=DEFAULT_BROKER_URL, help="a Redis database, flushed"
    )
    parser.add_argument("--keep", action="store_true", help="leave the database for inspection")
    parser.add_argument("--librarians", type=int, default=5000)
    parser.add_argument("--libraries", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1, help="celery worker processes")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=os.cpu_count() or 1,
        help="pool processes per worker (default: the CPUs, as celery's own default)",
    )
    parser.add_argument("--chains", type=int, default=2, help="CAMPAIGNS_WORKER_CHAINS")
    parser.add_argument("--batch-size", type=int, default=100, help="CAMPAIGNS_BATCH_SIZE")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for `sent`")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one more setting for the workers (and this process), e.g. --env CONN_MAX_AGE=60",
    )
    args = parser.parse_args()
    name = urlsplit(args.broker_url)
    if name.scheme != "redis" or name.path.strip("/") in ("", "0"):
        parser.error("--broker-url must name a Redis database other than 0: it is flushed")
    return args


# The SMTP sink ------------------------------------------------------------------------------


@dataclass
class Received:
    """What the sink received since the last take: per address, and every message's bytes."""

    by_address: Counter = field(default_factory=Counter)
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refused: int = 0


class SinkHandler:
    """aiosmtpd handler: accepts everything, counts per recipient, keeps the bytes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received = Received()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.by_address[rcpt.lower()] += 1
            self.received.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
            )
        return "250 Message accepted for delivery"

    def take(self) -> Received:
        with self.lock:
            received, self.received = self.received, Received()
        return received


def _sink_main(port: int, pipe) -> None:
    """The sink process: serve on ``port`` and answer the parent's commands on ``pipe``."""
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    try:
        controller.start()
    except Exception as error:
        pipe.send(("error", repr(error)))
        return
    pipe.send(("ready", port))
    try:
        while True:
            command = pipe.recv()
            if command == "take":
                pipe.send(handler.take())
            else:
                break
    except EOFError:
        pass
    finally:
        controller.stop()


class Sink:
    def __init__(self, process, pipe, port: int) -> None:
        self.process, self.pipe, self.port = process, pipe, port

    @classmethod
    def start(cls) -> Sink:
        port = free_port()
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        process = context.Process(target=_sink_main, args=(port, child), daemon=True)
        process.start()
        if not parent.poll(15):
            process.kill()
            raise SetupError("the SMTP sink did not start in 15 s")
        status, detail = parent.recv()
        if status != "ready":
            raise SetupError(f"the SMTP sink did not start: {detail}")
        return cls(process, parent, port)

    def take(self) -> Received:
        """What the sink received since the last take (and forget it)."""
        self.pipe.send("take")
        if not self.pipe.poll(60):
            raise SetupError("the SMTP sink does not answer")
        return self.pipe.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self.pipe.send("stop")
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()


# The broker and the database ----------------------------------------------------------------


def broker_flush(broker_url: str) -> None:
    """Empty the benchmark's Redis database: no task of an earlier run is left in it."""
    import redis

    client = redis.Redis.from_url(broker_url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


# The data -----------------------------------------------------------------------------------


def populate(args: argparse.Namespace) -> int:
    """Migrate, add the libraries, librarians and the campaign; return the campaign's id."""
    import django
    from django.core.management import call_command

    with step("migrate"):
        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
    with step(f"{args.libraries} libraries, {args.librarians} librarians, the campaign"):
        campaign_id, counts = data_add(libraries=args.libraries, librarians=args.librarians)
    print("  " + ", ".join(f"{n} {label}" for label, n in counts.items()))
    with step("vacuum analyze"):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return campaign_id


def data_add(*, libraries: int, librarians: int) -> tuple[int, dict]:
    from django.db import transaction
    from django.utils import timezone
    from django.utils.text import slugify

    from campaigns.models import Campaign, Message
    from libraries.models import Librarian, Library, Region

    rng = random.Random("outreach-bench-mailing-1")
    with transaction.atomic():
        regions = Region.objects.bulk_create(
            Region(name=name, slug=slug, language=language)
            for name, slug, language, _languages, _cities in REGIONS
        )
        library_rows = []
        for i in range(libraries):
            region = regions[i % len(regions)]
            _name, _slug, _language, languages, cities = REGIONS[i % len(REGIONS)]
            city = cities[(i // len(REGIONS)) % len(cities)]
            word = "Bibliothek" if languages.startswith("de") else "Bibliothèque"
            name = f"{word} {city} {i + 1}"
            library_rows.append(
                Library(
                    name=name,
                    slug=slugify(name),
                    region=region,
                    city=city,
                    languages=languages,
                    status=rng.choice(Library.Status.values),
                    score_base=round(rng.random() * 100, 1) if rng.random() < 0.7 else None,
                )
            )
        library_rows = Library.objects.bulk_create(library_rows)
        librarian_rows = []
        for i in range(librarians):
            library = library_rows[i % len(library_rows)]
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            language = rng.choice(library.language_list)
            librarian_rows.append(
                Librarian(
                    library=library,
                    name=f"{first} {last}",
                    email=f"{first}.{last}.{i + 1}@{library.slug}.example.ch".lower(),
                    language=language,
                    role="Responsable" if language == "fr" else "Leiterin",
                    consent_source="Annuaire des bibliothèques 2024",
                    consent_at=timezone.now().date(),
                    shortlist_rank=(i % 50) + 1 if rng.random() < 0.1 else None,
                )
            )
        Librarian.objects.bulk_create(librarian_rows, batch_size=2000)
        campaign = Campaign.objects.create(
            title="Ateliers Wikipédia en bibliothèque, automne",
            kind=Campaign.Kind.INVITATION,
            default_language="fr",
            filter_librarians=True,
        )
        Message.objects.bulk_create(
            Message(campaign=campaign, language=language, subject=subject, body=body)
            for language, (subject, body) in MESSAGES.items()
        )
    languages = Counter(row.language for row in librarian_rows)
    counts = {
        "regions": len(regions),
        "libraries": len(library_rows),
        "librarians": len(librarian_rows),
        **{f"in {code}": n for code, n in sorted(languages.items())},
    }
    return campaign.pk, counts


# The workers --------------------------------------------------------------------------------


def workers_start(args: argparse.Namespace, env: dict, scratch: Path) -> list[subprocess.Popen]:
    from outreach.celery import app

    if app.conf.task_always_eager or not app.conf.broker_url:
        raise SetupError("Celery runs tasks in-process here: CELERY_BROKER_URL is not set")
    workers: list[subprocess.Popen] = []
    names = []
    label = (
        f"{args.workers} celery worker(s), prefork, concurrency {args.concurrency}, queue {QUEUE}"
    )
    with step(label):
        for n in range(args.workers):
            name = f"bench-mailing-{n + 1}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
            names.append(name)
            log = scratch / f"worker-{n + 1}.log"
            command = [
                sys.executable, "-m", "celery", "-A", "outreach", "worker",
                "--pool=prefork", f"--concurrency={args.concurrency}",
                "--loglevel=INFO", f"--logfile={log}",
                "-Q", QUEUE, "-n", name,
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ]  # fmt: skip
            workers.append(
                subprocess.Popen(
                    command,
                    cwd=BASE_DIR,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=(scratch / f"worker-{n + 1}.err").open("wb"),
                    # Its own process group: stopped with its pool processes.
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 60
        ready: set[str] = set()
        while len(ready) < len(names):
            for worker in workers:
                if worker.poll() is not None:
                    raise SetupError(f"a worker exited ({worker.returncode}):\n{logs(scratch)}")
            if time.monotonic() > deadline:
                raise SetupError(f"the workers did not answer a ping in 60 s:\n{logs(scratch)}")
            for reply in app.control.ping(destination=names, timeout=1.0) or []:
                ready.update(reply)
    return workers


def logs(scratch: Path) -> str:
    parts = []
    for path in sorted(scratch.glob("worker-*")):
        text = path.read_text(errors="replace")[-2000:]
        if text.strip():
            parts.append(f"--- {path.name}\n{text}")
    return "\n".join(parts)


def workers_stop(workers: list[subprocess.Popen]) -> None:
    """SIGTERM (celery's warm shutdown), then SIGKILL to the process group after 20 s."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    deadline = time.monotonic() + 20
    for worker in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        if worker.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        else:
            # The pool processes of a worker that exited, if any are left.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.pid, signal.SIGKILL)


# The measurement ----------------------------------------------------------------------------


@dataclass
class Launch:
    seconds: float = 0.0  # the whole of campaign_launch, commit included
    create_seconds: float = 0.0  # deliveries_create within it
    created: int = 0
    queries: int = 0  # SQL statements of the launch
    create_queries: int = 0  # of which deliveries_create's


def launch(campaign_id: int) -> tuple[Launch, float]:
    """``campaign_launch`` as the launch view calls it; return its figures and when it
    started (epoch seconds). ``deliveries_create`` is timed and its statements counted
    from outside, wrapped where ``_start`` looks it up."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns import services
    from campaigns.models import Campaign

    figures = Launch()
    original = services.deliveries_create
    capture = CaptureQueriesContext(connection)

    def timed(*, campaign):
        before = len(capture.captured_queries)
        started = time.perf_counter()
        created = original(campaign=campaign)
        figures.create_seconds = time.perf_counter() - started
        figures.create_queries = len(capture.captured_queries) - before
        figures.created = created
        return created

    campaign = Campaign.objects.get(pk=campaign_id)
    services.deliveries_create = timed
    try:
        with capture:
            started_at = time.time()
            started = time.perf_counter()
            services.campaign_launch(campaign=campaign)
            figures.seconds = time.perf_counter() - started
    finally:
        services.deliveries_create = original
    figures.queries = len(capture.captured_queries)
    return figures, started_at


@dataclass
class Cpu:
    """CPU-seconds so far: the machine's (busy and in all), the workers' (their process
    groups: pool processes included), the sink's and this process's. Linux (/proc) only."""

    busy: float = 0.0
    total: float = 0.0
    workers: float = 0.0
    sink: float = 0.0
    bench: float = 0.0

    @classmethod
    def now(cls, *, workers: list[subprocess.Popen], sink: Sink) -> Cpu | None:
        try:
            with open("/proc/stat") as stat:
                # user nice system idle iowait irq softirq steal, in clock ticks
                values = [int(v) for v in stat.readline().split()[1:9]]
            groups = {worker.pid for worker in workers}
            sums = {"workers": 0, "sink": 0, "bench": 0}
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/stat") as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # gone meanwhile
                pid, group, ticks = (
                    int(entry.name),
                    int(fields[2]),
                    int(fields[11]) + int(fields[12]),
                )
                if group in groups:
                    sums["workers"] += ticks
                elif pid == sink.process.pid:
                    sums["sink"] += ticks
                elif pid == os.getpid():
                    sums["bench"] += ticks
        except (OSError, ValueError, IndexError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        idle = values[3] + values[4]
        return cls(
            busy=(sum(values) - idle) / tick,
            total=sum(values) / tick,
            **{key: ticks / tick for key, ticks in sums.items()},
        )

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(
            *(getattr(self, name) - getattr(other, name) for name in self.__dataclass_fields__)
        )


def machine_busy(*, workers: list[subprocess.Popen], sink: Sink, seconds: float = 1.0) -> str:
    """How busy the CPUs are while the benchmark does nothing: other processes' load."""
    before = Cpu.now(workers=workers, sink=sink)
    time.sleep(seconds)
    after = Cpu.now(workers=workers, sink=sink)
    if before is None or after is None:
        return "unknown (no /proc)"
    used = after - before
    return f"{used.busy / used.total:.0%} of the CPUs busy" if used.total else "unknown"


def measure(
    args: argparse.Namespace,
    *,
    campaign_id: int,
    sink: Sink,
    workers: list[subprocess.Popen],
    scratch: Path,
) -> None:
    from django.db import connection
    from django.db.models import Count, Max, Min

    from campaigns.models import Campaign, Delivery

    sink.take()  # nothing, but for the record: the sink starts empty
    print(
        f"\nsending: {args.workers} worker(s) × {args.concurrency} pool processes, "
        f"CAMPAIGNS_WORKER_CHAINS={args.chains}, CAMPAIGNS_BATCH_SIZE={args.batch_size}, "
        f"CAMPAIGNS_RATE_PER_SECOND=0; {os.cpu_count()} CPUs shared by workers, PostgreSQL, "
        "Redis, the sink and this process"
    )
    # The raw rate before and after the campaign: on a shared machine the load of other
    # processes drifts, and the campaign is compared with the mean of its neighbours. Before,
    # the messages are the campaign's as previewed (one per language, addressed to each
    # librarian in turn); after, the very bytes the sink received.
    raw_before = raw_send(sink.port, preview_messages(campaign_id), label="before")
    raw_before.check(sink.take())
    print(f"  before the launch, idle: {machine_busy(workers=workers, sink=sink)}")
    cpu_before = Cpu.now(workers=workers, sink=sink)
    figures, launched_at = launch(campaign_id)
    print(
        f"  launch: {figures.seconds:.2f} s ({figures.created} deliveries created in "
        f"{figures.create_seconds:.2f} s, {figures.create_queries} SQL statements; "
        f"{figures.queries} for the whole launch)",
        flush=True,
    )
    deadline = time.monotonic() + args.timeout
    last_report = time.monotonic()
    while True:
        status = Campaign.objects.values_list("status", flat=True).get(pk=campaign_id)
        if status != Campaign.Status.SENDING:
            break
        for worker in workers:
            if worker.poll() is not None:
                raise SetupError(f"a worker exited ({worker.returncode}):\n{logs(scratch)}")
        if time.monotonic() > deadline:
            break
        if time.monotonic() - last_report > 10:
            sent = Delivery.objects.filter(campaign_id=campaign_id, state="sent").count()
            print(f"  … {sent} sent", flush=True)
            last_report = time.monotonic()
        time.sleep(0.1)
    cpu_after = Cpu.now(workers=workers, sink=sink)
    waited = time.time() - launched_at
    if status == Campaign.Status.SENDING:
        # Given up: nothing more may reach the sink while it is counted.
        workers_stop(workers)
    campaign = Campaign.objects.get(pk=campaign_id)
    states = dict(
        Delivery.objects.filter(campaign_id=campaign_id)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    span = Delivery.objects.filter(campaign_id=campaign_id).aggregate(
        first=Min("sent_at"), last=Max("sent_at"), attempts=Max("attempts")
    )
    addresses = [
        email.lower()
        for email in Delivery.objects.filter(campaign_id=campaign_id).values_list(
            "email", flat=True
        )
    ]
    connection.close()
    received = sink.take()
    finished = campaign.status == Campaign.Status.SENT and campaign.finished_at is not None
    end_to_end = campaign.finished_at.timestamp() - launched_at if finished else waited
    print(
        f"  campaign {campaign.status} after {end_to_end:.2f} s"
        + ("" if finished else f" (gave up after {args.timeout:.0f} s)")
    )
    print("  deliveries: " + ", ".join(f"{n} {state}" for state, n in sorted(states.items())))

    # Lost: an address of a delivery that received nothing; duplicated: more than once.
    expected = set(addresses)
    lost = sum(1 for address in expected if received.by_address[address] == 0)
    duplicated = sum(1 for address in expected if received.by_address[address] > 1)
    extra = sum(
        n - 1 for address, n in received.by_address.items() if n > 1 and address in expected
    )
    unexpected = sum(n for address, n in received.by_address.items() if address not in expected)

    raw_after = raw_send(sink.port, received.messages, label="after")
    raw_after.check(sink.take())
    probe = batch_probe(campaign_id, size=args.batch_size, sink=sink)

    total = len(received.messages)
    sizes = [len(content) for _f, _t, content in received.messages]
    rate = len(expected) / end_to_end if finished and end_to_end > 0 else 0.0
    raw_rate = (raw_before.rate + raw_after.rate) / 2
    ratio = rate / raw_rate if raw_rate else 0.0
    sending_span = (
        (span["last"] - span["first"]).total_seconds() if span["first"] and span["last"] else 0
    )
    created_rate = figures.created / figures.create_seconds if figures.create_seconds else 0.0

    rows = [
        (
            "deliveries created",
            f"{figures.created}",
            f"{figures.create_seconds:.3f} s",
            f"{created_rate:,.0f} /s",
            f"deliveries_create: {figures.create_queries} SQL statements",
        ),
        (
            "launch (whole transaction)",
            f"{figures.created}",
            f"{figures.seconds:.3f} s",
            f"{figures.created / figures.seconds if figures.seconds else 0:,.0f} /s",
            f"campaign_launch: {figures.queries} SQL statements",
        ),
        (
            "sent, end to end",
            f"{len(expected)}",
            f"{end_to_end:.3f} s",
            f"{rate:,.1f} /s" if finished else "did not finish",
            "launch → the campaign's finished_at",
        ),
        (
            "sent, first → last sent_at",
            f"{states.get('sent', 0)}",
            f"{sending_span:.3f} s",
            f"{states.get('sent', 0) / sending_span if sending_span else 0:,.1f} /s",
            "the workers' part",
        ),
        *(
            (
                f"raw smtplib, {raw.label}",
                f"{raw.sent}",
                f"{raw.seconds:.3f} s",
                f"{raw.rate:,.1f} /s",
                raw.note + ("" if raw.ok else " (MISCOUNTED by the sink)"),
            )
            for raw in (raw_before, raw_after)
        ),
        ("raw smtplib, mean", "", "", f"{raw_rate:,.1f} /s", "the yardstick of the ratio"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    widths[0] = max(widths[0], len("figure"))
    print(
        f"\n{'figure':<{widths[0]}}  {'count':>{widths[1]}}  {'time':>{widths[2]}}  "
        f"{'rate':>{widths[3]}}  note"
    )
    for row in rows:
        print(
            f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  "
            f"{row[3]:>{widths[3]}}  {row[4]}"
        )
    print(
        f"\nmessages received by the sink: {total} "
        f"({statistics_line(sizes)}); most attempts on one delivery: {span['attempts']}"
    )
    if cpu_before is not None and cpu_after is not None and total:
        used = cpu_after - cpu_before
        rest = used.busy - used.workers - used.sink - used.bench
        per = 1000 / total
        print(
            f"CPU from the launch to `sent`: {used.busy:.1f} s busy of {used.total:.1f} s "
            f"({used.busy / used.total:.0%}); per message: workers {used.workers * per:.2f} ms, "
            f"sink {used.sink * per:.2f} ms, this process {used.bench * per:.2f} ms, the rest "
            f"(PostgreSQL, Redis, other processes) {rest * per:.2f} ms"
        )
    if probe:
        print(probe)
    print(f"\nratio (sent end to end / raw smtplib, mean): {ratio:.3f}")
    print(
        f"lost (addresses that received nothing): {lost}"
        + ("" if finished else " (the campaign did not finish: what is still queued counts)")
    )
    print(f"duplicated (addresses that received more than one): {duplicated} ({extra} extra)")
    if unexpected:
        print(f"messages to addresses of no delivery: {unexpected}")
    ok = finished and ratio >= AIM and lost == 0 and duplicated == 0
    print(f"\naim: ratio >= {AIM}, lost 0, duplicated 0")
    print(
        f"  {'PASS ' if ok else 'BELOW'}  ratio {ratio:.3f}, lost {lost}, duplicated {duplicated}"
    )


def batch_probe(campaign_id: int, *, size: int, sink: Sink) -> str:
    """One batch of a copy of the campaign sent by ``batch_send`` in this process (after a
    first batch that warms it up), the workers idle: its SQL statements (those run once per
    message apart) and where its time goes. A diagnosis of the figures above, not one of
    them."""
    import smtplib as smtp_module

    from django.db import connection
    from django.utils import timezone

    from campaigns import sending, services
    from campaigns.models import Campaign, Message
    from libraries.models import Librarian

    original = Campaign.objects.get(pk=campaign_id)
    copy = Campaign.objects.create(
        title=f"{original.title} (probe)",
        kind=original.kind,
        default_language=original.default_language,
    )
    Message.objects.bulk_create(
        Message(campaign=copy, language=m.language, subject=m.subject, body=m.body)
        for m in original.messages.all()
    )
    # Two batches: the first one loads the templates and catalogues, the second is timed.
    copy.librarians.set(Librarian.objects.order_by("pk")[: 2 * size])
    services.deliveries_create(campaign=copy)
    now = timezone.now()
    Campaign.objects.filter(pk=copy.pk).update(
        status=Campaign.Status.SENDING, started_at=now, heartbeat_at=now
    )
    statements: list[tuple[str, float]] = []
    smtp_seconds = [0.0]

    def timed_sql(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((sql, time.perf_counter() - started))

    sendmail = smtp_module.SMTP.sendmail

    def timed_sendmail(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return sendmail(self, *args, **kwargs)
        finally:
            smtp_seconds[0] += time.perf_counter() - started

    sending.batch_send(campaign_id=copy.pk)
    smtp_module.SMTP.sendmail = timed_sendmail
    try:
        with connection.execute_wrapper(timed_sql):
            started = time.perf_counter()
            result = sending.batch_send(campaign_id=copy.pk)
            seconds = time.perf_counter() - started
    finally:
        smtp_module.SMTP.sendmail = sendmail
    connection.close()
    sink.take()
    if not result.sent:
        return f"one batch in this process: nothing sent ({result})"
    shapes = Counter(_statement_shape(sql) for sql, _seconds in statements)
    per_message = {shape: n for shape, n in shapes.items() if n >= result.sent}
    sql_seconds = sum(s for _sql, s in statements)
    n = result.sent
    lines = [
        f"one batch in this process (batch_send, workers idle): {n} messages in "
        f"{seconds:.3f} s, {seconds / n * 1000:.2f} ms each: SQL {sql_seconds / n * 1000:.2f} ms, "
        f"SMTP {smtp_seconds[0] / n * 1000:.2f} ms, the rest (rendering, MIME, Python) "
        f"{(seconds - sql_seconds - smtp_seconds[0]) / n * 1000:.2f} ms; "
        f"{len(statements)} SQL statements ({len(statements) / n:.2f} per message)",
    ]
    for shape, count in sorted(per_message.items(), key=lambda item: -item[1]):
        lines.append(f"  {count / n:.2f} per message: {shape}")
    return "\n".join(lines)


def _statement_shape(sql: str) -> str:
    """The statement without its values: ``UPDATE "campaigns_delivery" SET "state" …``."""
    head = sql.split(" WHERE ", 1)[0]
    return head if len(head) <= 90 else head[:89] + "…"


def statistics_line(sizes: list[int]) -> str:
    if not sizes:
        return "none"
    sizes = sorted(sizes)
    return f"{sum(sizes) / len(sizes):,.0f} bytes on average, {sizes[0]:,} to {sizes[-1]:,}"


@dataclass
class Raw:
    label: str
    note: str
    sent: int = 0
    seconds: float = 0.0
    ok: bool = True

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def check(self, received: Received) -> None:
        """The sink got each message once."""
        self.ok = sum(received.by_address.values()) == self.sent


def raw_send(port: int, messages: list[tuple[str, list[str], bytes]], *, label: str) -> Raw:
    """Send ``messages`` (sender, recipients, bytes) over one smtplib connection, timing
    only that (the connection included)."""
    what = "the campaign's messages as previewed" if label == "before" else "the same bytes"
    raw = Raw(label=f"{label}", note=f"{what}, one connection")
    with step(f"raw smtplib, {label}: {len(messages)} messages over one connection"):
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            for sender, recipients, content in messages:
                client.sendmail(sender, recipients, content)
                raw.sent += 1
        raw.seconds = time.perf_counter() - started
    return raw


def preview_messages(campaign_id: int) -> list[tuple[str, list[str], bytes]]:
    """The campaign's message as a librarian receives it, rendered once per language by the
    app's own code (an unsaved delivery, Django's in-memory backend), then addressed to
    every librarian of that language in turn: what the workers will send, bar the links'
    tokens, which name no delivery here."""
    from email.utils import parseaddr

    from django.core import mail
    from django.core.mail import get_connection

    from campaigns import sending
    from campaigns.models import Campaign
    from libraries.models import Librarian

    campaign = Campaign.objects.get(pk=campaign_id)
    connection = get_connection("django.core.mail.backends.locmem.EmailBackend")
    librarians = list(Librarian.objects.select_related("library").order_by("pk"))
    prototypes: dict[str, tuple[str, bytes, bytes]] = {}
    for librarian in librarians:
        if librarian.language in prototypes:
            continue
        delivery = sending.delivery_example(
            campaign, language=librarian.language, librarian=librarian
        )
        sending.delivery_send(delivery, connection=connection)
        message = mail.outbox.pop()
        content = message.message().as_bytes(linesep="\r\n")
        sender = parseaddr(message.from_email)[1]
        prototypes[librarian.language] = (sender, librarian.email.encode(), content)
    messages = []
    for librarian in librarians:
        sender, address, content = prototypes[librarian.language]
        messages.append(
            (sender, [librarian.email], content.replace(address, librarian.email.encode()))
        )
    return messages


if __name__ == "__main__":
    sys.exit(main())

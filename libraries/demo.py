"""Demo data: a believable French-speaking Swiss network of libraries.

``load(ctx)`` builds six cantonal regions, about sixty libraries with their librarians, the
four mailing lists they talk on, each library's path through the pipeline (its history
back-dated over the last eighteen months) and the activity signals observed on the way.

Everything is invented: the towns and their postcodes are real, the libraries, streets and
people are not, and every address ends in ``.example.org`` (reserved by RFC 2606), so a demo
campaign can never reach anybody. The towns of the import example file (Vallorbe, Cossonay,
Le Landeron, Romont, Saint-Maurice, Saignelégier) are left out, so that importing it after
the demo adds libraries instead of colliding with these.

Rows are looked up by their natural keys (region slug, library name and city, librarian
email whatever its case, list name), so running it again creates nothing; status history and
signals are written only for the libraries the run itself created. Randomness comes from
``random.Random`` seeded per library and purpose, so every run draws the same names, and
the dates only move with the day the demo is loaded.

Other apps add their demo data in their own ``demo.py`` with a ``load(ctx)`` taking the same
``DemoContext`` (``ctx.libraries`` holds every demo library, found or created, and
``ctx.paths`` where each went), called by the ``load_demo`` command after this one.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Lower
from django.utils.text import slugify

from core.text import normalize_email

from .models import ActivitySignal, Librarian, Library, LibraryStatusChange, MailingList, Region
from .services import library_create, library_status_change, signal_record

SEED = "outreach-demo-1"
TIME_ZONE = ZoneInfo("Europe/Zurich")
# The chapter's address on every list (list software holds posts from non-members).
CHAPTER_ADDRESS = "bibliotheques@wikimedia-romandie.example.org"

PRO, CON, INT, PAR, DOR = "prospect", "contacted", "interested", "partner", "dormant"


@dataclass(frozen=True)
class RegionSpec:
    slug: str
    name: str
    imported_days_ago: int  # when its public directory of libraries was imported
    invited_days_ago: int  # when the invitation to Wikipermanences went out on its list
    invited_via: str  # the list that carried it


@dataclass(frozen=True)
class LibrarySpec:
    region: str
    name: str
    place: str  # postcode and town, as Swiss addresses write them: "1110 Morges"
    status: str  # where it stands now; library_path() makes up its way there
    languages: str = "fr"

    @property
    def school(self) -> bool:
        return self.name.startswith("Bibliothèque scolaire")

    @property
    def city(self) -> str:
        return self.place.split(" ", 1)[1]

    @property
    def postcode(self) -> str:
        return self.place.split(" ", 1)[0]

    @property
    def domain(self) -> str:
        return DOMAINS.get(self.name, "")

    @property
    def host(self) -> str:
        return f"{self.domain or slugify(self.city)}.example.org"


REGIONS = [
    RegionSpec("vaud", "Vaud", 545, 420, "Biblio-Vaud"),
    RegionSpec("geneve", "Genève", 538, 390, "Lecture publique Genève"),
    RegionSpec("neuchatel", "Neuchâtel", 500, 318, "Réseau Arc jurassien"),
    RegionSpec("fribourg", "Fribourg", 470, 270, "BiblioRomandie"),
    RegionSpec("valais", "Valais", 470, 270, "BiblioRomandie"),
    RegionSpec("jura", "Jura", 500, 318, "Réseau Arc jurassien"),
]

LIBRARIES_BY_REGION = {
    "vaud": [
        ("Bibliothèque de quartier de la Sallaz", "1010 Lausanne", PAR),
        ("Bibliothèque interculturelle de Lausanne", "1004 Lausanne", INT),
        ("Médiathèque de Renens", "1020 Renens", PAR),
        ("Bibliothèque communale de Prilly", "1008 Prilly", CON),
        ("Bibliothèque communale de Pully", "1009 Pully", PRO),
        ("Bibliothèque municipale de Morges", "1110 Morges", INT),
        ("Médiathèque de Nyon", "1260 Nyon", DOR),
        ("Bibliothèque scolaire de Gland", "1196 Gland", PRO),
        ("Bibliothèque publique et scolaire de Rolle", "1180 Rolle", CON),
        ("Médiathèque d'Yverdon-les-Bains", "1400 Yverdon-les-Bains", CON),
        ("Bibliothèque municipale de Vevey", "1800 Vevey", PRO),
        ("Bibliothèque communale de Montreux", "1820 Montreux", CON),
        ("Bibliothèque de La Tour-de-Peilz", "1814 La Tour-de-Peilz", PRO),
        ("Bibliothèque communale d'Aigle", "1860 Aigle", PRO),
        ("Bibliothèque scolaire et communale de Payerne", "1530 Payerne", PRO),
        ("Bibliothèque régionale de la Vallée de Joux", "1347 Le Sentier", PRO),
        ("Bibliothèque interculturelle de l'Ouest lausannois", "1024 Ecublens", CON),
        ("Bibliothèque communale d'Échallens", "1040 Échallens", PRO),
    ],
    "geneve": [
        ("Bibliothèque municipale de Carouge", "1227 Carouge", PAR),
        ("Bibliothèque de quartier de Plainpalais", "1205 Genève", INT),
        ("Bibliothèque interculturelle des Pâquis", "1201 Genève", CON),
        ("Médiathèque de Meyrin", "1217 Meyrin", INT),
        ("Bibliothèque municipale de Vernier", "1214 Vernier", CON),
        ("Bibliothèque communale d'Onex", "1213 Onex", DOR),
        ("Bibliothèque municipale de Lancy", "1212 Lancy", PRO),
        ("Bibliothèque de Thônex", "1226 Thônex", PRO),
        ("Bibliothèque scolaire de Plan-les-Ouates", "1228 Plan-les-Ouates", PRO),
        ("Bibliothèque communale de Versoix", "1290 Versoix", CON),
        ("Bibliothèque de Chêne-Bougeries", "1224 Chêne-Bougeries", PRO),
        ("Médiathèque de Bernex", "1233 Bernex", PRO),
    ],
    "neuchatel": [
        ("Bibliothèque interculturelle de Neuchâtel", "2000 Neuchâtel", PAR),
        ("Médiathèque de La Chaux-de-Fonds", "2300 La Chaux-de-Fonds", INT),
        ("Bibliothèque municipale du Locle", "2400 Le Locle", CON),
        ("Bibliothèque communale de Boudry", "2017 Boudry", PRO),
        ("Bibliothèque communale de Peseux", "2034 Peseux", PRO),
        ("Bibliothèque scolaire de Marin-Epagnier", "2074 Marin-Epagnier", PRO),
        ("Bibliothèque régionale du Val-de-Travers", "2114 Fleurier", CON),
        ("Bibliothèque régionale du Val-de-Ruz", "2053 Cernier", PRO),
        ("Bibliothèque communale de Colombier", "2013 Colombier", PRO),
    ],
    "fribourg": [
        ("Bibliothèque interculturelle de Fribourg", "1700 Fribourg", INT, "de,fr"),
        ("Bibliothèque de quartier du Schoenberg", "1700 Fribourg", PRO, "de,fr"),
        ("Médiathèque de Bulle", "1630 Bulle", PAR),
        ("Bibliothèque de Morat", "3280 Morat", CON, "de,fr"),
        ("Bibliothèque communale d'Estavayer-le-Lac", "1470 Estavayer-le-Lac", PRO),
        ("Bibliothèque de Châtel-Saint-Denis", "1618 Châtel-Saint-Denis", CON),
        ("Bibliothèque communale de Villars-sur-Glâne", "1752 Villars-sur-Glâne", PRO),
        ("Bibliothèque scolaire de Marly", "1723 Marly", PRO),
        ("Bibliothèque bilingue de Guin", "3186 Guin", PRO, "de,fr"),
    ],
    "valais": [
        ("Bibliothèque municipale de Sion", "1950 Sion", INT),
        ("Bibliothèque-médiathèque de Sierre", "3960 Sierre", CON, "de,fr"),
        ("Bibliothèque municipale de Martigny", "1920 Martigny", CON),
        ("Bibliothèque communale de Monthey", "1870 Monthey", CON),
        ("Bibliothèque de Conthey", "1964 Conthey", PRO),
        ("Bibliothèque communale de Fully", "1926 Fully", PRO),
        ("Bibliothèque bilingue de Brigue", "3900 Brigue", PRO, "de,fr"),
        ("Bibliothèque communale de Collombey-Muraz", "1868 Collombey", PRO),
    ],
    "jura": [
        ("Médiathèque de Delémont", "2800 Delémont", INT),
        ("Bibliothèque municipale de Porrentruy", "2900 Porrentruy", CON),
        ("Bibliothèque communale de Bassecourt", "2854 Bassecourt", PRO),
        ("Bibliothèque scolaire de Courrendlin", "2830 Courrendlin", PRO),
        ("Bibliothèque communale du Noirmont", "2340 Le Noirmont", PRO),
        ("Bibliothèque communale d'Alle", "2942 Alle", DOR),
    ],
}
LIBRARIES = [
    LibrarySpec(region, *row) for region, rows in LIBRARIES_BY_REGION.items() for row in rows
]
# Libraries with a web domain of their own; the others are pages of their town's site.
DOMAINS = {
    "Bibliothèque de quartier de la Sallaz": "sallaz.biblio-lausanne",
    "Bibliothèque interculturelle de Lausanne": "interculturelle-lausanne",
    "Bibliothèque scolaire de Gland": "ecoles-gland",
    "Bibliothèque régionale de la Vallée de Joux": "biblio-valleedejoux",
    "Bibliothèque interculturelle de l'Ouest lausannois": "biblio-ouest",
    "Bibliothèque de quartier de Plainpalais": "plainpalais.bibliotheques-geneve",
    "Bibliothèque interculturelle des Pâquis": "paquis.bibliotheques-geneve",
    "Bibliothèque scolaire de Plan-les-Ouates": "ecoles-plo",
    "Bibliothèque interculturelle de Neuchâtel": "interculturelle-ne",
    "Médiathèque de La Chaux-de-Fonds": "chaux-de-fonds",
    "Bibliothèque scolaire de Marin-Epagnier": "ecoles-marin",
    "Bibliothèque régionale du Val-de-Travers": "biblio-vdt",
    "Bibliothèque régionale du Val-de-Ruz": "biblio-vdr",
    "Bibliothèque interculturelle de Fribourg": "interculturelle-fr",
    "Bibliothèque de quartier du Schoenberg": "schoenberg",
    "Bibliothèque communale d'Estavayer-le-Lac": "estavayer",
    "Bibliothèque de Châtel-Saint-Denis": "chatel-st-denis",
    "Bibliothèque scolaire de Marly": "ecoles-marly",
    "Bibliothèque communale de Collombey-Muraz": "collombey-muraz",
    "Bibliothèque scolaire de Courrendlin": "ecoles-courrendlin",
}
SPECS = {(spec.name, spec.city): spec for spec in LIBRARIES}

# Where a dormant library fell asleep from (the rest of the table only says where it is now).
DORMANT_FROM = {
    ("Médiathèque de Nyon", "Nyon"): PAR,
    ("Bibliothèque communale d'Onex", "Onex"): CON,
    ("Bibliothèque communale d'Alle", "Alle"): INT,
}
# A librarian of each of these asked to hear no more after the invitation.
UNSUBSCRIBED_AT = {
    ("Bibliothèque communale de Prilly", "Prilly"),
    ("Bibliothèque municipale de Martigny", "Martigny"),
}


@dataclass(frozen=True)
class ListSpec:
    name: str
    local_part: str
    network: str
    region: str | None  # None: the list spans several regions
    member_regions: tuple[str, ...]
    moderators: str


MAILING_LISTS = [
    ListSpec(
        "BiblioRomandie",
        "bibliromandie",
        "Bibliothèques romandes",
        None,
        ("vaud", "geneve", "neuchatel", "fribourg", "valais", "jura"),
        "Comité de BiblioRomandie",
    ),
    ListSpec(
        "Biblio-Vaud",
        "biblio-vaud",
        "Bibliothèques vaudoises",
        "vaud",
        ("vaud",),
        "Groupe des bibliothécaires vaudois",
    ),
    ListSpec(
        "Lecture publique Genève",
        "lecture-publique-ge",
        "Lecture publique genevoise",
        "geneve",
        ("geneve",),
        "Service de la lecture publique",
    ),
    ListSpec(
        "Réseau Arc jurassien",
        "arc-jurassien",
        "Bibliothèques de l'Arc jurassien",
        None,
        ("neuchatel", "jura"),
        "Bibliothèque régionale du Val-de-Travers",
    ),
]

STREETS = [
    "Rue du Collège",
    "Place du Marché",
    "Rue de la Gare",
    "Grand-Rue",
    "Rue du Temple",
    "Avenue de la Gare",
    "Rue des Écoles",
    "Place de l'Hôtel-de-Ville",
    "Rue du Bourg",
    "Rue Centrale",
    "Rue de l'Église",
    "Avenue du Léman",
    "Rue du Midi",
]

# (first name, "f"/"m")
FIRST_NAMES_FR = [
    ("Anne", "f"), ("Claire", "f"), ("Sophie", "f"), ("Nathalie", "f"), ("Isabelle", "f"),
    ("Valérie", "f"), ("Céline", "f"), ("Laure", "f"), ("Mélanie", "f"), ("Sandrine", "f"),
    ("Aurélie", "f"), ("Camille", "f"), ("Léa", "f"), ("Julie", "f"), ("Martine", "f"),
    ("Françoise", "f"), ("Chantal", "f"), ("Sylvie", "f"), ("Catherine", "f"), ("Marie", "f"),
    ("Élodie", "f"), ("Noémie", "f"), ("Fanny", "f"), ("Maude", "f"), ("Delphine", "f"),
    ("Amina", "f"), ("Inès", "f"), ("Giulia", "f"), ("Ana", "f"), ("Mirela", "f"),
    ("Pierre", "m"), ("Jean-Marc", "m"), ("Laurent", "m"), ("Nicolas", "m"), ("Olivier", "m"),
    ("Stéphane", "m"), ("Christophe", "m"), ("Julien", "m"), ("Thomas", "m"), ("Yves", "m"),
    ("Patrick", "m"), ("Raphaël", "m"), ("Luca", "m"), ("Karim", "m"), ("Joël", "m"),
]  # fmt: skip
FIRST_NAMES_DE = [
    ("Ursula", "f"), ("Barbara", "f"), ("Andrea", "f"), ("Simone", "f"), ("Monika", "f"),
    ("Martin", "m"), ("Daniel", "m"), ("Reto", "m"),
]  # fmt: skip
LAST_NAMES_FR = [
    "Rochat", "Favre", "Pittet", "Chappuis", "Monnier", "Perrin", "Jaquet", "Berthoud",
    "Aubert", "Vuilleumier", "Clerc", "Mottier", "Rossier", "Bugnon", "Jaccard", "Bovet",
    "Morand", "Crettex", "Fournier", "Carron", "Maillard", "Roulin", "Boillat", "Froidevaux",
    "Chevillat", "Cuendet", "Gaillard", "Dupraz", "Bonvin", "Michellod", "Theytaz", "Droz",
    "Jeanneret", "Huguenin", "Vermot", "Ducommun", "Rérat", "Queloz", "Girardin", "Pasche",
    "Golay", "Magnin", "Sauthier", "Da Silva", "Ferreira", "Rossi", "Bianchi", "Nguyen",
    "Haddad", "Berisha", "Kovačević", "Mendes", "Öztürk",
]  # fmt: skip
LAST_NAMES_DE = ["Zbinden", "Aebischer", "Brunner", "Imboden", "Zurbriggen", "Riedo", "Schmid"]

HEAD_ROLES = {"f": "responsable de la bibliothèque", "m": "responsable de la bibliothèque"}
ROLES = {
    "f": [
        "bibliothécaire",
        "bibliothécaire",
        "bibliothécaire jeunesse",
        "médiatrice culturelle",
        "assistante en information documentaire",
        "responsable des animations",
    ],
    "m": [
        "bibliothécaire",
        "bibliothécaire",
        "médiateur culturel",
        "assistant en information documentaire",
        "responsable des animations",
    ],
}
SCHOOL_ROLES = {"f": "bibliothécaire scolaire", "m": "bibliothécaire scolaire"}

CONSENT_SOURCES = [
    "Annuaire public de la bibliothèque",
    "Annuaire public de la bibliothèque",
    "Page Contact du site de la bibliothèque",
    "Annuaire des bibliothèques romandes",
]

# #1bib1ref (#1lib1ref) runs from mid-January to early February, and again in May:
# ((first month, first day), (last month, last day)).
ONE_LIB_ONE_REF_WINDOWS = [((1, 15), (2, 5)), ((5, 1), (5, 31))]

# Subjects of list threads a library answered, while the chapter observed who is active.
LIST_TOPICS = [
    "question sur le prêt entre bibliothèques",
    "offre de doublons (bandes dessinées)",
    "annonce d'une exposition",
    "conseils pour le désherbage du fonds documentaire",
    "recherche d'un conteur pour la Nuit du conte",
    "partage d'une bibliographie pour la rentrée",
    "retour d'expérience sur les automates de prêt",
    "question sur les ressources numériques",
]


@dataclass
class Step:
    status: str
    at: datetime
    source: str
    reason: str = ""


@dataclass
class Path:
    """Where one library went through the pipeline, and the Wikipermanences it hosted."""

    steps: list[Step]
    meetups: list[datetime] = field(default_factory=list)

    def reached(self, status: str) -> Step | None:
        return next((step for step in self.steps if step.status == status), None)

    @property
    def end(self) -> datetime | None:
        """When the library stopped taking part (it went dormant), if it did."""
        step = self.reached(DOR)
        return step.at if step else None


@dataclass
class DemoContext:
    """What one run of the demo loader knows: the clock, the seed, and what it found or made."""

    now: datetime
    seed: str = SEED
    created: Counter[str] = field(default_factory=Counter)
    regions: dict[str, Region] = field(default_factory=dict)  # by slug
    libraries: dict[tuple[str, str], Library] = field(default_factory=dict)  # by (name, city)
    new_library_ids: set[int] = field(default_factory=set)
    paths: dict[tuple[str, str], Path] = field(default_factory=dict)  # by (name, city)

    def rng(self, *parts: object) -> random.Random:
        """A generator seeded by ``parts``: the same draws for the same row, run after run."""
        return random.Random(":".join([self.seed, *map(str, parts)]))

    def summary(self) -> str:
        if not any(self.created.values()):
            return "Demo data already loaded: nothing to do."
        counts = ", ".join(f"{n} {label}" for label, n in self.created.items() if n)
        return f"Demo data loaded: created {counts}."


@transaction.atomic
def load(ctx: DemoContext) -> None:
    """Create whatever part of the demo network is missing; leave existing rows untouched."""
    regions_load(ctx)
    for spec in LIBRARIES:
        ctx.paths[(spec.name, spec.city)] = library_path(ctx, spec)
    libraries_load(ctx)
    librarians_load(ctx)
    mailing_lists_load(ctx)
    signals_load(ctx)


def regions_load(ctx: DemoContext) -> None:
    for spec in REGIONS:
        region, created = Region.objects.get_or_create(
            slug=spec.slug,
            defaults={"name": spec.name, "language": "fr", "time_zone": "Europe/Zurich"},
        )
        ctx.regions[spec.slug] = region
        ctx.created["regions"] += created


def libraries_load(ctx: DemoContext) -> None:
    found = _existing_libraries([(spec.name, spec.city) for spec in LIBRARIES])
    for spec in LIBRARIES:
        key = (spec.name, spec.city)
        library = found.get((spec.name.casefold(), spec.city.casefold()))
        if library is None:
            library = _library_create(ctx, spec, ctx.paths[key])
            ctx.new_library_ids.add(library.pk)
            ctx.created["libraries"] += 1
        ctx.libraries[key] = library
    ctx.created["status changes"] += LibraryStatusChange.objects.filter(
        library_id__in=ctx.new_library_ids
    ).count()


def _existing_libraries(keys: list[tuple[str, str]]) -> dict[tuple[str, str], Library]:
    """Libraries matching (name, city) the way the database's uniqueness constraint does."""
    match = Q()
    for name, city in keys:
        match |= Q(lower_name=Lower(Value(name)), lower_city=Lower(Value(city)))
    rows = Library.objects.annotate(lower_name=Lower("name"), lower_city=Lower("city"))
    return {(lib.name.casefold(), lib.city.casefold()): lib for lib in rows.filter(match)}


def _library_create(ctx: DemoContext, spec: LibrarySpec, path: Path) -> Library:
    rng = ctx.rng("library", spec.name, spec.city)
    street = "Chemin des Écoliers" if spec.school else rng.choice(STREETS)
    library = library_create(
        name=spec.name,
        city=spec.city,
        region=ctx.regions[spec.region],
        address=f"{street} {rng.randint(1, 48)}, {spec.postcode} {spec.city}",
        # A commune's library is a page of its site; the others have a site of their own.
        website=f"https://{spec.host}/" if spec.domain else f"https://www.{spec.host}/bibliotheque",
        languages=spec.languages,
        status=PRO,
        source=path.steps[0].source,
    )
    changes = list(library.status_changes.all())
    for step in path.steps[1:]:
        changes.append(
            library_status_change(
                library=library, status=step.status, reason=step.reason, source=step.source
            )
        )
    # The services stamp every step with the present; the demo's story happened over the
    # last eighteen months, so its dates are written afterwards.
    for change, step in zip(changes, path.steps, strict=True):
        LibraryStatusChange.objects.filter(pk=change.pk).update(changed_at=step.at)
    library.status_changed_at, library.created_at = path.steps[-1].at, path.steps[0].at
    Library.objects.filter(pk=library.pk).update(
        status_changed_at=library.status_changed_at, created_at=library.created_at
    )
    return library


def library_path(ctx: DemoContext, spec: LibrarySpec) -> Path:
    """The library's steps through the pipeline up to its status in the table, with dates."""
    rng = ctx.rng("path", spec.name, spec.city)
    region = next(r for r in REGIONS if r.slug == spec.region)
    position = LIBRARIES.index(spec)
    limit = ctx.now - timedelta(days=1)
    # The directory was imported in one go, a few seconds per row.
    imported = _local(_weekday(ctx.now - timedelta(days=region.imported_days_ago)), time(9, 30))
    steps = [Step(PRO, imported + timedelta(seconds=7 * position), "import")]
    path = Path(steps)
    if spec.status == PRO:
        return path

    invited = _local(_weekday(ctx.now - timedelta(days=region.invited_days_ago)), time(10, 0))
    if rng.random() < 0.25:
        contacted = Step(
            CON,
            _working_time(rng, (invited + timedelta(days=rng.randint(20, 60))).date()),
            "manual",
            "Relance directe de la responsable, repérée comme active sur la liste "
            f"{region.invited_via}",
        )
    else:
        contacted = Step(
            CON,
            invited + timedelta(seconds=position),
            "campaign",
            f"Invitation aux Wikipermanences envoyée sur la liste {region.invited_via}",
        )
    steps.append(contacted)
    target = DORMANT_FROM.get((spec.name, spec.city), spec.status)

    if target in (INT, PAR):
        answered = contacted.at + timedelta(days=rng.randint(3, 28), hours=rng.randint(0, 6))
        steps.append(
            Step(
                INT,
                answered,
                "campaign answer",
                rng.choice(
                    [
                        "A répondu oui à l'invitation : une Wikipermanence pour l'équipe et "
                        "le public",
                        "Oui à l'invitation ; souhaite d'abord une séance pour l'équipe",
                        "Réponse positive, salle disponible le jeudi à midi",
                    ]
                ),
            )
        )
    if target == PAR:
        first = _next_wikipermanence(answered + timedelta(days=rng.randint(21, 50)))
        steps.append(
            Step(
                PAR,
                first + timedelta(hours=3),
                "manual",
                f"Première Wikipermanence tenue le {first:%d.%m.%Y} ; rendez-vous mensuel "
                "le premier jeudi à midi",
            )
        )
        # A partner still hosts every month; a dormant one stopped after a few sessions.
        hosted = None if spec.status == PAR else rng.randint(4, 6)
        meetup = first
        while meetup <= limit and (hosted is None or len(path.meetups) < hosted):
            path.meetups.append(meetup)
            meetup = _next_wikipermanence(meetup + timedelta(days=7))

    if spec.status == DOR:
        if target == PAR:
            at = path.meetups[-1] + timedelta(days=rng.randint(60, 100))
            reason = (
                "Plus de Wikipermanence depuis le départ de la responsable ; à relancer à la "
                "rentrée"
            )
        elif target == INT:
            at = steps[-1].at + timedelta(days=rng.randint(90, 150))
            reason = "Intéressée, mais aucune date trouvée malgré trois relances"
        else:
            at = steps[-1].at + timedelta(days=rng.randint(120, 200))
            reason = "Aucune réponse à l'invitation ni aux deux relances"
        steps.append(Step(DOR, _working_time(rng, at.date()), "manual", reason))

    # The table's dates leave room for every path; this keeps a future edit of it honest.
    for i, step in enumerate(steps):
        latest = limit - timedelta(minutes=len(steps) - i)
        earliest = steps[i - 1].at + timedelta(minutes=1) if i else step.at
        step.at = max(min(step.at, latest), earliest)
    return path


def librarians_load(ctx: DemoContext) -> None:
    taken_names: set[str] = set()
    planned = [(key, person) for key in ctx.libraries for person in _staff(ctx, key, taken_names)]
    existing = set(
        Librarian.objects.annotate(lower_email=Lower("email"))
        .filter(lower_email__in=[person["email"].lower() for _, person in planned])
        .values_list("lower_email", flat=True)
    )
    for key, person in planned:
        if person["email"].lower() in existing:
            continue
        existing.add(person["email"].lower())  # one person per address, across libraries too
        librarian = Librarian(library=ctx.libraries[key], **person)
        librarian.full_clean()
        librarian.save()
        ctx.created["librarians"] += 1


def _staff(ctx: DemoContext, key: tuple[str, str], taken_names: set[str]) -> list[dict]:
    """The librarians of one library: 1–4 people, the first one in charge.

    ``taken_names`` holds the names given so far, so that nobody has a namesake elsewhere
    in the network (which would read like a mistake in a demo).
    """
    spec = SPECS[key]
    path = ctx.paths[key]
    rng = ctx.rng("staff", *key)
    bilingual = "de" in spec.languages.split(",")
    wiki_chance = {PRO: 0.25, CON: 0.35, INT: 0.55, PAR: 0.75, DOR: 0.45}[spec.status]
    people: list[dict] = []
    for i in range(rng.choices([1, 2, 3, 4], weights=[3, 5, 3, 1])[0]):
        german = bilingual and rng.random() < 0.4
        for _ in range(20):
            first, gender = rng.choice(FIRST_NAMES_DE if german else FIRST_NAMES_FR)
            last = rng.choice(LAST_NAMES_DE if german else LAST_NAMES_FR)
            if f"{first} {last}" not in taken_names:
                break
        taken_names.add(f"{first} {last}")
        email = normalize_email(f"{slugify(first)}.{slugify(last)}@{spec.host}")
        if i == 0:
            role = HEAD_ROLES[gender]
        elif spec.school:
            role = SCHOOL_ROLES[gender]
        else:
            role = rng.choice(ROLES[gender])
        person = {
            "name": f"{first} {last}",
            "email": email,
            "role": role,
            "language": "de" if german else "fr",
            "consent_source": rng.choice(CONSENT_SOURCES),
            "consent_at": (path.steps[0].at - timedelta(days=rng.randint(0, 40))).date(),
        }
        if rng.random() < wiki_chance:
            person["wiki_username"] = rng.choice(
                [
                    f"{first} {last}",
                    f"{first}{last[0]} ({spec.city})",
                    f"{last} biblio",
                    f"{first} {last[0]}.",
                ]
            )
            person["home_wiki"] = "dewiki" if german else "frwiki"
        people.append(person)
    if key in UNSUBSCRIBED_AT and (contacted := path.reached(CON)):
        # The last one of the team asked to be left out after the invitation.
        people[-1]["unsubscribed_at"] = contacted.at + timedelta(days=rng.randint(1, 10))
    return people


def mailing_lists_load(ctx: DemoContext) -> None:
    for spec in MAILING_LISTS:
        mailing_list = MailingList.objects.filter(name=spec.name).first()
        created = mailing_list is None
        if created:
            mailing_list = MailingList.objects.create(
                name=spec.name,
                slug=spec.local_part,
                posting_address=f"{spec.local_part}@listes.example.org",
                subscribed_as=CHAPTER_ADDRESS,
                network=spec.network,
                region=ctx.regions[spec.region] if spec.region else None,
                language="fr",
                moderators=spec.moderators,
                notes="Les messages des non-abonnés sont retenus pour modération.",
            )
            ctx.created["mailing lists"] += 1
        # A found list keeps the members it has: only what this run created joins it.
        regions = {ctx.regions[slug].pk for slug in spec.member_regions}
        members = {
            library.pk
            for library in ctx.libraries.values()
            if library.region_id in regions and (created or library.pk in ctx.new_library_ids)
        }
        members -= set(mailing_list.members.values_list("pk", flat=True))
        mailing_list.members.add(*members)
        ctx.created["list memberships"] += len(members)


def signals_load(ctx: DemoContext) -> None:
    """What the chapter observed about each library the run created."""
    new = [(key, lib) for key, lib in ctx.libraries.items() if lib.pk in ctx.new_library_ids]
    staff = {}
    for librarian in Librarian.objects.filter(library_id__in=ctx.new_library_ids).order_by("pk"):
        staff.setdefault(librarian.library_id, []).append(librarian)
    before = ActivitySignal.objects.count()
    for key, library in new:
        for signal in _signals(ctx, key, library, staff.get(library.pk, [])):
            signal_record(library=library, source="demo", **signal)
    ctx.created["activity signals"] += ActivitySignal.objects.count() - before


def _signals(
    ctx: DemoContext, key: tuple[str, str], library: Library, librarians: list[Librarian]
) -> list[dict]:
    rng = ctx.rng("signals", *key)
    path = ctx.paths[key]
    start = path.steps[0].at
    end = path.end or ctx.now - timedelta(days=1)
    region = SPECS[key].region
    lists = [s.name for s in MAILING_LISTS if region in s.member_regions]
    head = librarians[0] if librarians else None
    signals: list[dict] = []

    def someone() -> Librarian | None:
        return rng.choice([*librarians, None]) if librarians else None

    # Replies on the lists: how the chapter noticed which libraries are active.
    replies = {
        PRO: [0, 0, 1, 1, 2, 3],
        CON: [1, 2, 3],
        INT: [2, 3, 4, 5],
        PAR: [3, 4, 5, 6],
        DOR: [1, 2, 3],
    }
    for _ in range(rng.choice(replies[library.status])):
        signals.append(
            {
                "kind": ActivitySignal.Kind.LIST_REPLY,
                "occurred_at": _between(rng, start, end),
                "librarian": someone(),
                "note": f"{rng.choice(lists)} : {rng.choice(LIST_TOPICS)}",
            }
        )

    contacted, interested = path.reached(CON), path.reached(INT)
    if interested:
        signals.append(
            {
                "kind": ActivitySignal.Kind.INVITATION_YES,
                "occurred_at": interested.at,
                "librarian": head,
                "note": "Réponse à l'invitation aux Wikipermanences",
            }
        )
    elif contacted and rng.random() < 0.4:
        signals.append(
            {
                "kind": rng.choice(
                    [ActivitySignal.Kind.INVITATION_MAYBE, ActivitySignal.Kind.INVITATION_NO]
                ),
                "occurred_at": contacted.at + timedelta(days=rng.randint(1, 12), hours=2),
                "librarian": head,
                "note": "Réponse à l'invitation aux Wikipermanences",
            }
        )
    elif contacted and rng.random() < 0.3:
        signals.append(
            {
                "kind": ActivitySignal.Kind.CONTACT,
                "occurred_at": contacted.at + timedelta(days=rng.randint(5, 30)),
                "librarian": head,
                "note": "Appel téléphonique : à recontacter après les vacances",
            }
        )

    # Interested libraries send someone to a Wikipermanence held elsewhere in the region.
    if interested and not path.meetups:
        meetup = _next_wikipermanence(interested.at + timedelta(days=10))
        for _ in range(rng.randint(1, 3)):
            if meetup > end:
                break
            person = someone() or head
            signals.append(
                {
                    "kind": ActivitySignal.Kind.RSVP_YES,
                    "occurred_at": max(
                        interested.at + timedelta(hours=1),
                        meetup - timedelta(days=rng.randint(3, 10), hours=3),
                    ),
                    "librarian": person,
                }
            )
            if rng.random() < 0.75:
                signals.append(
                    {
                        "kind": ActivitySignal.Kind.ATTENDED,
                        "occurred_at": meetup,
                        "librarian": person,
                    }
                )
            meetup = _next_wikipermanence(meetup + timedelta(days=rng.randint(7, 60)))

    # Partners host a Wikipermanence every first Thursday; some of their staff come.
    for meetup in path.meetups:
        signals.append(
            {
                "kind": ActivitySignal.Kind.HOSTED_MEETUP,
                "occurred_at": meetup,
                "librarian": head,
                "note": f"Wikipermanence du {meetup:%d.%m.%Y}",
            }
        )
        for librarian in librarians:
            if rng.random() < 0.4:
                signals.append(
                    {
                        "kind": ActivitySignal.Kind.ATTENDED,
                        "occurred_at": meetup,
                        "librarian": librarian,
                    }
                )
    if path.meetups and rng.random() < 0.5:
        signals.append(
            {
                "kind": ActivitySignal.Kind.STORY,
                "occurred_at": path.meetups[-1] + timedelta(days=rng.randint(2, 20)),
                "librarian": head,
                "note": "Un lecteur est devenu contributeur régulier après trois Wikipermanences",
            }
        )

    # #1bib1ref: librarians with a wiki account add references during the campaign windows.
    eager = {PRO: 0.3, CON: 0.3, INT: 0.6, PAR: 0.8, DOR: 0.5}[library.status]
    since = contacted.at if contacted else start
    for librarian in librarians:
        if not librarian.wiki_username:
            continue
        for window_start, window_end in _campaign_windows(since, end):
            if rng.random() >= eager:
                continue
            for _ in range(rng.randint(1, 6)):
                at = _between(rng, window_start, window_end)
                signals.append(
                    {
                        "kind": ActivitySignal.Kind.TAGGED_EDIT,
                        "occurred_at": at,
                        "librarian": librarian,
                        "note": "#1bib1ref",
                    }
                )
                if rng.random() < 0.8:
                    signals.append(
                        {
                            "kind": ActivitySignal.Kind.REFERENCE_ADDED,
                            "occurred_at": at,
                            "librarian": librarian,
                            "note": "#1bib1ref",
                        }
                    )
    return [s for s in signals if s["occurred_at"] <= ctx.now]


def _campaign_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The #1bib1ref campaign windows (mid-January to early February, and May) in a period."""
    windows = []
    for year in range(start.year - 1, end.year + 1):
        for (m1, d1), (m2, d2) in ONE_LIB_ONE_REF_WINDOWS:
            first, last = date(year, m1, d1), date(year, m2, d2)
            lo = max(start, _local(first, time(8, 0)))
            hi = min(end, _local(last, time(20, 0)))
            if lo < hi:
                windows.append((lo, hi))
    return windows


def _local(day: date | datetime, at: time) -> datetime:
    day = day.date() if isinstance(day, datetime) else day
    return datetime.combine(day, at, tzinfo=TIME_ZONE)


def _weekday(day: date | datetime) -> date:
    """``day``, or the Monday after it if it falls on a weekend."""
    day = day.date() if isinstance(day, datetime) else day
    return day + timedelta(days=max(0, 7 - day.weekday()) if day.weekday() >= 5 else 0)


def _working_time(rng: random.Random, day: date) -> datetime:
    minutes = rng.choice([0, 10, 15, 20, 30, 40, 45, 50])
    return _local(_weekday(day), time(rng.randint(8, 17), minutes))


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A moment between ``start`` and ``end``, in office hours when the span allows it."""
    moment = start + (end - start) * rng.random()
    local = moment.astimezone(TIME_ZONE)
    if end - start > timedelta(days=2):
        local = _working_time(rng, local.date())
    return min(max(local, start), end)


def _next_wikipermanence(moment: datetime) -> datetime:
    """The next session on or after ``moment``: none in August (the libraries' summer
    closing) nor on New Year's Day."""
    candidate = _first_thursday_on_or_after(moment)
    while candidate.month == 8 or (candidate.month, candidate.day) == (1, 1):
        candidate = _first_thursday_on_or_after(candidate + timedelta(days=1))
    return candidate


def _first_thursday_on_or_after(moment: datetime) -> datetime:
    """The next first Thursday of a month at noon, local time (the Wikipermanences' rule)."""
    local = moment.astimezone(TIME_ZONE)
    year, month = local.year, local.month
    while True:
        first = date(year, month, 1)
        thursday = first + timedelta(days=(3 - first.weekday()) % 7)
        candidate = _local(thursday, time(12, 0))
        if candidate >= moment:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)

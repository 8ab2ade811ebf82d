"""Outreach settings: everything that differs between machines is read from the environment.

The defaults are for development on a machine with nothing but Python: SQLite, tasks run
in-process, email printed to the console. Production sets DEBUG=0 and real values, and then
``manage.py check --deploy`` has nothing to say.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=True)

# A development key is allowed only while DEBUG is on: a production deployment that forgets
# SECRET_KEY refuses to start instead of signing links with a key everybody knows.
_DEV_SECRET_KEY = "django-insecure-outreach-development-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY in the environment when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Absolute base of the links in emails (answer links, unsubscribe), without a trailing slash.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
SITE_NAME = env.str("SITE_NAME", default="Outreach")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    # The ground first, the roof last: each app builds on those above it in this list.
    "core",
    "libraries",
    "meetings",
    "campaigns",
    "drives",
    "outreach",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view requires a login unless it is marked @login_not_required: a new coordinator
    # view cannot ship unprotected by forgetting a mixin. Public pages opt out explicitly.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "outreach.urls"
WSGI_APPLICATION = "outreach.wsgi.application"
ASGI_APPLICATION = "outreach.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "core.context_processors.site",
            ],
        },
    },
]

# An empty variable means "not set": `DATABASE_URL= make test` runs on the embedded default.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    ),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Internationalisation. The interface languages; content (libraries, librarians, meetups,
# messages) may be in any of CONTENT_LANGUAGES.
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("fr", "Français"),
    # Complete; its wording awaits the review of a German-speaking coordinator.
    ("de", "Deutsch"),
]
# The interface languages whose catalogue must be complete (tests/outreach/test_i18n.py):
# a new string without its translation fails the suite. A language being started would be
# in LANGUAGES only, its missing strings shown in English.
COMPLETE_LANGUAGES = ["en", "fr", "de"]
CONTENT_LANGUAGES = [
    ("fr", _("French")),
    ("de", _("German")),
    ("it", _("Italian")),
    ("rm", _("Romansh")),
    ("en", _("English")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Zurich")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = BASE_DIR / "media"
MEDIA_URL = "media/"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Cache: pages and calendar feeds read by the public. In-process by default; production
# shares one cache between workers (CACHE_URL=redis://host:6379/1).
CACHES = {"default": env.cache_url_config(env.str("CACHE_URL", default="") or "locmemcache://")}

# Email. console:// in development; smtp://user:password@host:587/?tls=True in production.
# The parsed URL gives EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_USE_TLS, … as settings.
EMAIL_CONFIG = env.email_url_config(env.str("EMAIL_URL", default="") or "consolemail://")
globals().update(EMAIL_CONFIG)
# An SMTP server that stops answering must not hold a worker: its deliveries wait and retry.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"{SITE_NAME} <outreach@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# Celery. Without a broker, tasks run in-process so that the embedded default works alone.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")

# Meetups: how far ahead the meetings of a series exist as rows.
# Campaigns: how fast and how hard sending tries (see campaigns.sending).
# Messages per second across every worker; 0 sends as fast as the server takes them.
CAMPAIGNS_RATE_PER_SECOND = env.float("CAMPAIGNS_RATE_PER_SECOND", default=5.0)
CAMPAIGNS_BATCH_SIZE = env.int("CAMPAIGNS_BATCH_SIZE", default=50)
# Task chains sending one campaign at the same time (more workers: more chains).
CAMPAIGNS_WORKER_CHAINS = env.int("CAMPAIGNS_WORKER_CHAINS", default=2)
# A claimed delivery not marked sent after this long belongs to a dead worker: claimed again.
CAMPAIGNS_CLAIM_LEASE_SECONDS = env.int("CAMPAIGNS_CLAIM_LEASE_SECONDS", default=300)
CAMPAIGNS_RETRY_BASE_SECONDS = env.float("CAMPAIGNS_RETRY_BASE_SECONDS", default=60.0)
CAMPAIGNS_RETRY_MAX_SECONDS = env.float("CAMPAIGNS_RETRY_MAX_SECONDS", default=3600.0)
CAMPAIGNS_MAX_ATTEMPTS = env.int("CAMPAIGNS_MAX_ATTEMPTS", default=10)
# The mailto half of List-Unsubscribe, read by the coordinators; empty: DEFAULT_FROM_EMAIL's.
CAMPAIGNS_UNSUBSCRIBE_MAILTO = env.str("CAMPAIGNS_UNSUBSCRIBE_MAILTO", default="")

MEETUPS_HORIZON_DAYS = env.int("MEETUPS_HORIZON_DAYS", default=120)
# Reminders are emailed this many days before each meeting.
MEETUPS_REMINDER_DAYS = env.list("MEETUPS_REMINDER_DAYS", cast=int, default=[7, 1])

# Wikis, read through drives.wiki (the only module that imports pywikibot).
# The Action API URL of each wiki, by short name; the variable replaces the whole table:
# WIKIS=frwiki=http://127.0.0.1:8090/w/api.php,commons=https://commons.wikimedia.org/w/api.php
WIKIS = env.dict(
    "WIKIS",
    default={
        "frwiki": "https://fr.wikipedia.org/w/api.php",
        "dewiki": "https://de.wikipedia.org/w/api.php",
        "enwiki": "https://en.wikipedia.org/w/api.php",
        "commons": "https://commons.wikimedia.org/w/api.php",
    },
)
# pywikibot's cache (site and parameter info) and throttle file; created on demand.
WIKI_CACHE_DIR = Path(env.str("WIKI_CACHE_DIR", default=str(BASE_DIR / "var" / "pywikibot")))
# Seconds to wait for a wiki's answer; a call gives up after WIKI_ATTEMPTS tries.
WIKI_TIMEOUT = env.float("WIKI_TIMEOUT", default=5.0)
WIKI_ATTEMPTS = env.int("WIKI_ATTEMPTS", default=3)
# The same for a request of revision texts: 50 full texts of long articles take longer.
WIKI_TEXTS_TIMEOUT = env.float("WIKI_TEXTS_TIMEOUT", default=30.0)
# Longest pause between tries, whatever a Retry-After header asks for.
WIKI_MAX_WAIT = env.float("WIKI_MAX_WAIT", default=5.0)
# Seconds of replication lag above which the wiki asks us to come back later; 5 is the
# value Wikimedia asks of bots (https://www.mediawiki.org/wiki/Manual:Maxlag_parameter).
WIKI_MAXLAG = env.int("WIKI_MAXLAG", default=5)
# How long the wikis keep their recent changes ($wgRCMaxAge): 30 days on Wikimedia wikis.
# The edits of participants the directory does not know are found there only.
WIKI_RC_MAX_AGE_DAYS = env.int("WIKI_RC_MAX_AGE_DAYS", default=30)
# Live capture of the drives' edits from Wikimedia EventStreams (manage.py drives_stream),
# e.g. https://stream.wikimedia.org/v2/stream/recentchange; empty: off (the pulls suffice).
DRIVES_EVENTSTREAMS_URL = env.str("DRIVES_EVENTSTREAMS_URL", default="")
# Seconds without a byte from the stream before it is reconnected (it sends a line at least
# every few seconds).
DRIVES_EVENTSTREAMS_TIMEOUT = env.float("DRIVES_EVENTSTREAMS_TIMEOUT", default=60.0)
# Rows per usercontribs page: 500 is the API's maximum without apihighlimits.
WIKI_CONTRIBUTIONS_PER_REQUEST = env.int("WIKI_CONTRIBUTIONS_PER_REQUEST", default=500)
# Every pull reads the last hours again: edits dated before the last pull may appear only
# later (replica lag, an undeleted page, an import). Upserts keep it from counting twice.
DRIVES_PULL_OVERLAP_HOURS = env.int("DRIVES_PULL_OVERLAP_HOURS", default=48)
# A pull not heard of for this long (it beats at every page) died with its worker: it is
# closed as interrupted and the next pull resumes where it stopped.
DRIVES_PULL_LEASE_SECONDS = env.int("DRIVES_PULL_LEASE_SECONDS", default=600)
# Put in the User-Agent of every wiki request, as the Wikimedia User-Agent policy asks.
WIKI_USER_AGENT_CONTACT = env.str("WIKI_USER_AGENT_CONTACT", default="outreach@localhost")

# Scores (libraries.scoring): a library's score is the sum of its activity signals, each
# weighted by its kind and halved every SCORE_HALF_LIFE_DAYS of age. SCORE_WEIGHTS in the
# environment overrides some weights and keeps the others: SCORE_WEIGHTS=tagged_edit=1,story=6.
SCORE_WEIGHTS = {
    "list_reply": 2.0,
    "invitation_yes": 5.0,
    "invitation_maybe": 2.0,
    # A "no" is an answer, not interest: it neither helps nor harms.
    "invitation_no": 0.0,
    "rsvp_yes": 2.0,
    "attended": 3.0,
    "hosted_meetup": 8.0,
    "tagged_edit": 1.0,
    "reference_added": 2.0,
    "story": 4.0,
    "contact": 1.0,
}


def _score_weights(text: str) -> dict[str, float]:
    """Parse "kind=weight,kind=weight" into {kind: weight}. Not env.dict, which reads "1.5" as
    15 (it takes the dot for a thousands separator)."""
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, sep, value = item.partition("=")
        try:
            weights[kind.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not kind.strip():
            raise ImproperlyConfigured(f"SCORE_WEIGHTS: {item!r} is not kind=number.")
    return weights


SCORE_WEIGHTS |= _score_weights(env.str("SCORE_WEIGHTS", default=""))
SCORE_HALF_LIFE_DAYS = env.float("SCORE_HALF_LIFE_DAYS", default=180.0)
if SCORE_HALF_LIFE_DAYS <= 0:
    raise ImproperlyConfigured("SCORE_HALF_LIFE_DAYS must be a positive number of days.")
# The nightly refresh carries the scores forward; once a week it checks them against a full
# count and counts everything again when they differ by more than this, relative.
SCORES_CHECK_TOLERANCE = env.float("SCORES_CHECK_TOLERANCE", default=1e-6)
# How long the refresh waits for transactions still writing signals before it leaves the new
# ones to the next refresh (every new signal waits behind it meanwhile).
SCORES_WATERMARK_WAIT = env.float("SCORES_WATERMARK_WAIT", default=10.0)

# Uploads: a CSV directory of a few thousand librarians is well under this.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=5 * 1024 * 1024)

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Off only for a plain-http trial on one's own machine (docker-compose.yml).
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

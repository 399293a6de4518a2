"""Django settings, read from the environment (twelve-factor).

Every variable is listed with its default in README.md. With nothing set, the service runs on
development defaults: SQLite under ``var/``, a file-based cache, and as Celery broker and result backend
the Valkey server that ``make run`` starts on 127.0.0.1:8379 (``wemasy/devtools/valkey.py``). ``make run``
itself sets ``REDIS_URL`` to that server, so its processes use Redis for everything, as in production.
"""

from __future__ import annotations

import logging
from pathlib import Path

import environ
from csp import constants as csp_constants
from django.core.exceptions import ImproperlyConfigured

from sendcloud_integration.limits import MAX_ORDERS_PER_UPSERT
from wemasy.api.clientip import parse_networks
from wemasy.encryption import MAKE_A_KEY, development_key, parse_keys
from wemasy.logging import JSON_FIELDS, JSON_RENAMES

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env(VAR_DIR=(str, str(BASE_DIR / "var")))("VAR_DIR"))

env = environ.Env(
    DJANGO_DEBUG=(bool, False),
    DJANGO_ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1"]),
    REDIS_URL=(str, ""),
    SENDCLOUD_API_BASE_URL=(str, "https://panel.sendcloud.sc/api"),
    SENDCLOUD_CHUNK_SIZE=(int, 100),
    API_RATE_LIMIT_PER_MINUTE=(int, 60),
    PUSH_MAX_ORDER_IDS=(int, 10_000),
)

DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

DEBUG: bool = env("DJANGO_DEBUG")
SECRET_KEY: str = env("DJANGO_SECRET_KEY", default=DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (the built-in key is for development only)."
    )

# Keys that encrypt secrets at rest (wemasy/encryption.py): Fernet keys, newest first. Required in
# production; `make run` (debug) generates one under var/ on first start.
FIELD_ENCRYPTION_KEYS_FROM_ENVIRONMENT = bool(env("FIELD_ENCRYPTION_KEYS", default=""))
if FIELD_ENCRYPTION_KEYS_FROM_ENVIRONMENT:
    FIELD_ENCRYPTION_KEYS = parse_keys(env("FIELD_ENCRYPTION_KEYS"))
elif DEBUG:
    FIELD_ENCRYPTION_KEYS = [development_key(VAR_DIR)]
else:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS must be set when DJANGO_DEBUG is off: it encrypts the Sendcloud secret keys "
        f"in the database. Make one with: {MAKE_A_KEY}"
    )
ALLOWED_HOSTS: list[str] = env("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS: list[str] = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "webshop",
    "sendcloud_integration",
]

MIDDLEWARE = [
    "wemasy.api.middleware.RequestIdMiddleware",
    "wemasy.api.middleware.RateLimitHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "wemasy.urls"
WSGI_APPLICATION = "wemasy.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The worker and the web server write to the same file: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate-limit counters, the Sendcloud request budget) ---------------------------------
REDIS_URL: str = env("REDIS_URL")
#: Every key the service writes to Redis (cache, rate limits, request budget) starts with this: two
#: deployments (or test runs) can share one Redis without touching each other's keys.
CACHE_KEY_PREFIX: str = env("CACHE_KEY_PREFIX", default="wemasy")
#: The request budget belongs to a Sendcloud account, not to a deployment: deployments (test and live, say)
#: that share an account and a Redis must share this prefix, or together they send twice the allowance.
SENDCLOUD_BUDGET_KEY_PREFIX: str = env("SENDCLOUD_BUDGET_KEY_PREFIX", default="wemasy")
#: Seconds a request waits for Redis, per connect and per reply, before giving up on it: the rate-limit
#: cache (every /api request) and the one message a push sends after commit. Redis answers in well under
#: a millisecond; a dead or hung one must cost a request a fraction of a second, not a web worker.
REDIS_REQUEST_TIMEOUT: float = env.float("REDIS_REQUEST_TIMEOUT", default=0.25)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            # redis-py's defaults are 5 s each; no retries (the pool's connections have none by default).
            "OPTIONS": {"socket_connect_timeout": REDIS_REQUEST_TIMEOUT, "socket_timeout": REDIS_REQUEST_TIMEOUT},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Auth, i18n, static ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Messages can carry a freshly issued API token (shown once): keep them server-side, not in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# --- REST API ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["webshop.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["wemasy.api.ratelimit.ApiRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "wemasy.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    # Swagger UI served from the installed package (drf-spectacular-sidecar): no CDN, no unpinned code.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "wemasy Sendcloud shipments API",
    "DESCRIPTION": "Push webshop orders to Sendcloud in bulk and follow their batches.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "wemasy.api.schema.add_rate_limit_headers",
    ],
}

API_RATE_LIMIT_PER_MINUTE: int = env("API_RATE_LIMIT_PER_MINUTE")
# Behind a load balancer: how many proxies append to X-Forwarded-For, or their networks (wemasy/api/clientip.py).
API_TRUSTED_PROXY_COUNT: int = env.int("API_TRUSTED_PROXY_COUNT", default=0)
try:
    API_TRUSTED_PROXIES = parse_networks(env("API_TRUSTED_PROXIES", default=""))
except ValueError as exc:
    raise ImproperlyConfigured(f"API_TRUSTED_PROXIES is not a comma-separated list of networks: {exc}") from None
if API_TRUSTED_PROXY_COUNT < 0 or (API_TRUSTED_PROXY_COUNT and API_TRUSTED_PROXIES):
    raise ImproperlyConfigured("Set API_TRUSTED_PROXY_COUNT (a count, 0 or more) or API_TRUSTED_PROXIES, not both.")
PUSH_MAX_ORDER_IDS: int = env("PUSH_MAX_ORDER_IDS")
RATELIMIT_USE_CACHE = "default"
# django-ratelimit warns that the file cache is not shared atomically; that is the dev default only.
SILENCED_SYSTEM_CHECKS = [] if REDIS_URL else ["django_ratelimit.W001", "django_ratelimit.E003"]

# --- Sendcloud ------------------------------------------------------------------------------------
SENDCLOUD_API_BASE_URL: str = env("SENDCLOUD_API_BASE_URL").rstrip("/")
# Prefix of the order ids sent to Sendcloud: test and live systems sharing an account must differ.
SENDCLOUD_ORDER_ID_PREFIX: str = env("SENDCLOUD_ORDER_ID_PREFIX", default="")
SENDCLOUD_CHUNK_SIZE: int = env("SENDCLOUD_CHUNK_SIZE")
if not 1 <= SENDCLOUD_CHUNK_SIZE <= MAX_ORDERS_PER_UPSERT:
    raise ImproperlyConfigured("SENDCLOUD_CHUNK_SIZE must be between 1 and 100 (the Sendcloud v3 batch maximum).")
SENDCLOUD_CONNECT_TIMEOUT: float = env.float("SENDCLOUD_CONNECT_TIMEOUT", default=5.0)
SENDCLOUD_READ_TIMEOUT: float = env.float("SENDCLOUD_READ_TIMEOUT", default=30.0)
SENDCLOUD_MAX_ATTEMPTS: int = env.int("SENDCLOUD_MAX_ATTEMPTS", default=5)
SENDCLOUD_RETRY_BASE_SECONDS: float = env.float("SENDCLOUD_RETRY_BASE_SECONDS", default=2.0)
SENDCLOUD_RETRY_MAX_SECONDS: float = env.float("SENDCLOUD_RETRY_MAX_SECONDS", default=60.0)
# The shared request budget per Sendcloud account (documented limits as defaults).
SENDCLOUD_UNSAFE_PER_MINUTE: int = env.int("SENDCLOUD_UNSAFE_PER_MINUTE", default=100)
SENDCLOUD_UNSAFE_PER_SECOND: int = env.int("SENDCLOUD_UNSAFE_PER_SECOND", default=15)
SENDCLOUD_SAFE_PER_MINUTE: int = env.int("SENDCLOUD_SAFE_PER_MINUTE", default=1000)
SENDCLOUD_BUDGET_ENABLED: bool = env.bool("SENDCLOUD_BUDGET_ENABLED", default=True)
# A request counts in the budget until its answer is in (budget.py), so the margins widening its windows
# cover clock resolution, not network or scheduling delays; the per-second one is smaller (budget.windows).
SENDCLOUD_BUDGET_MARGIN_SECONDS: float = env.float("SENDCLOUD_BUDGET_MARGIN_SECONDS", default=0.25)
SENDCLOUD_BUDGET_BURST_MARGIN_SECONDS: float = env.float("SENDCLOUD_BUDGET_BURST_MARGIN_SECONDS", default=0.1)
# Waits for a slot up to this long are slept through in the worker; longer ones re-schedule the task.
SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS: float = env.float("SENDCLOUD_BUDGET_MAX_SLEEP_SECONDS", default=2.0)
# Rows claimed by a worker longer than this are considered abandoned by the sweep.
SENDCLOUD_STALE_AFTER_SECONDS: int = env.int("SENDCLOUD_STALE_AFTER_SECONDS", default=300)
SENDCLOUD_SWEEP_INTERVAL_SECONDS: float = env.float("SENDCLOUD_SWEEP_INTERVAL_SECONDS", default=60.0)
# Fair by account (pipeline/release.py): at most this many chunks of one Sendcloud account are in the
# broker or being worked on at a time; the rest wait in the database for their turn.
SENDCLOUD_ACCOUNT_WINDOW: int = env.int("SENDCLOUD_ACCOUNT_WINDOW", default=4)
if SENDCLOUD_ACCOUNT_WINDOW < 1:
    raise ImproperlyConfigured("SENDCLOUD_ACCOUNT_WINDOW must be at least 1.")
# Labels (sendcloud_integration/labels.py). Polling a label that is being made: first after
# POLL_SECONDS, then less often as the wait grows (at most every POLL_MAX_SECONDS); an order whose label
# is not made within MAX_WAIT_SECONDS of its request fails. After a label request with an uncertain
# outcome (timeout, dropped connection), the order's shipments are looked up only LOOKUP_GRACE_SECONDS
# after the request, so that a request still running at Sendcloud is not missed and repeated.
SENDCLOUD_LABEL_POLL_SECONDS: float = env.float("SENDCLOUD_LABEL_POLL_SECONDS", default=2.0)
SENDCLOUD_LABEL_POLL_MAX_SECONDS: float = env.float("SENDCLOUD_LABEL_POLL_MAX_SECONDS", default=30.0)
SENDCLOUD_LABEL_MAX_WAIT_SECONDS: float = env.float("SENDCLOUD_LABEL_MAX_WAIT_SECONDS", default=900.0)
SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS: float = env.float("SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS", default=60.0)
#: A batch document's build whose heartbeat is older than this is taken to be dead: the next request sends it again.
SENDCLOUD_DOCUMENT_STALLED_SECONDS: float = env.float("SENDCLOUD_DOCUMENT_STALLED_SECONDS", default=120.0)
# The shipping-method catalogue (sendcloud_integration/shipping/): read again from Sendcloud when older than
# this, one POST /v3/shipping-options per destination country below, from SENDCLOUD_SHIPPING_FROM_COUNTRY.
SENDCLOUD_SHIPPING_METHODS_MAX_AGE_SECONDS: int = env.int("SENDCLOUD_SHIPPING_METHODS_MAX_AGE_SECONDS", default=86400)

# --- Tracking (webhooks, polling, cancelling: sendcloud_integration/tracking/) ------------------------
#: The address Sendcloud reaches this service at, for the webhook URL it is given (no trailing slash).
SENDCLOUD_PUBLIC_URL: str = env("SENDCLOUD_PUBLIC_URL", default="").rstrip("/")
#: How often beat re-sends stored deliveries not applied yet, and polls parcels of integrations without webhooks.
SENDCLOUD_TRACKING_SWEEP_SECONDS: float = env.float("SENDCLOUD_TRACKING_SWEEP_SECONDS", default=60.0)
#: A stored delivery whose message was sent this long ago and is still not applied is sent again (lost message).
SENDCLOUD_WEBHOOK_RETRY_SECONDS: float = env.float("SENDCLOUD_WEBHOOK_RETRY_SECONDS", default=900.0)
#: Tries to apply a delivery whose parcel is not known (yet) before it is recorded as unknown.
SENDCLOUD_WEBHOOK_MAX_ATTEMPTS: int = env.int("SENDCLOUD_WEBHOOK_MAX_ATTEMPTS", default=10)
#: Polling fallback: a parcel is read again after a quarter of its age, within these bounds.
SENDCLOUD_TRACKING_POLL_MIN_SECONDS: float = env.float("SENDCLOUD_TRACKING_POLL_MIN_SECONDS", default=1800.0)
SENDCLOUD_TRACKING_POLL_MAX_SECONDS: float = env.float("SENDCLOUD_TRACKING_POLL_MAX_SECONDS", default=86400.0)
#: Parcels polled per sweep at most (100 per GET): keeps the fallback well inside the GET budget.
SENDCLOUD_TRACKING_POLL_BATCH: int = env.int("SENDCLOUD_TRACKING_POLL_BATCH", default=500)
SENDCLOUD_SHIPPING_FROM_COUNTRY: str = env.str("SENDCLOUD_SHIPPING_FROM_COUNTRY", default="NL").upper()
# The service-point search (sendcloud_integration/shipping/service_points.py): answers are cached per query
# for this long (points change over days; a checkout asks the same question many times a minute).
SENDCLOUD_SERVICE_POINTS_CACHE_SECONDS: int = env.int("SENDCLOUD_SERVICE_POINTS_CACHE_SECONDS", default=120)
SENDCLOUD_SHIPPING_COUNTRIES: list[str] = [
    c.strip().upper() for c in env.list("SENDCLOUD_SHIPPING_COUNTRIES", default=["NL", "BE", "DE", "FR", "GB", "US"])
]

# --- Celery -----------------------------------------------------------------------------------------
# Without REDIS_URL: the embedded Valkey server of `make run` (make run sets REDIS_URL to it; this default
# lets a command run by hand in another terminal reach make run's worker). docs/design-notes.md says why
# not a filesystem or SQL broker.
EMBEDDED_REDIS_URL = "redis://127.0.0.1:8379/0"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or EMBEDDED_REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL or EMBEDDED_REDIS_URL)
CELERY_VISIBILITY_TIMEOUT: int = env.int("CELERY_VISIBILITY_TIMEOUT", default=900)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_TASK_DEFAULT_QUEUE: str = env("CELERY_QUEUE", default="celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Lean workers: the work waits on HTTP, so one process runs CELERY_CONCURRENCY chunks in threads (each
# thread has its own database connection, which Celery's Django fixup closes after every task).
CELERY_WORKER_POOL: str = env("CELERY_POOL", default="threads")
CELERY_WORKER_CONCURRENCY: int = env.int("CELERY_CONCURRENCY", default=8)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE = {
    "sendcloud-sweep": {
        "task": "sendcloud_integration.tasks.sweep",
        "schedule": SENDCLOUD_SWEEP_INTERVAL_SECONDS,
    },
    "sendcloud-tracking-sweep": {
        "task": "sendcloud_integration.tasks.tracking_sweep",
        "schedule": SENDCLOUD_TRACKING_SWEEP_SECONDS,
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Metrics (wemasy/metrics.py, GET /metrics) ------------------------------------------------------
# The Bearer token a Prometheus scraper sends to /metrics. Unset: /metrics answers only in debug, and
# refuses (403) in production. Multi-process mode is switched on by PROMETHEUS_MULTIPROC_DIR (read by
# prometheus-client itself): a directory every web and worker process of one host writes its values to.
METRICS_TOKEN: str = env("METRICS_TOKEN", default="")

# --- Logging ----------------------------------------------------------------------------------------
LOG_LEVEL: str = env("LOG_LEVEL", default="INFO")
# plain: one readable line per record; json: one JSON object per line, with the request, batch, chunk and
# order ids and the Sendcloud path as fields (wemasy/logging.py), in the web process and the workers.
LOG_FORMAT: str = env("LOG_FORMAT", default="plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "wemasy.logging.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": JSON_RENAMES,
            "timestamp": False,
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "celery": {"level": LOG_LEVEL},
    },
}
# A Celery worker replaces the root logger's handlers with its own plain format unless told not to: in
# JSON mode it keeps the handler above, so its own lines ("celery@host ready.", task results) are JSON too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
if LOG_FORMAT == "json":
    # Python's warnings (Celery's, say) as log records too, so that no plain line breaks the stream.
    logging.captureWarnings(True)

SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("DJANGO_BEHIND_PROXY", default=False) else None
)
# Behind TLS (all off by default, so `make run` works on plain http://127.0.0.1): redirect http to https,
# and tell browsers to use https only (HSTS) for this many seconds.
SECURE_SSL_REDIRECT: bool = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # load balancers probe over plain http
SECURE_HSTS_SECONDS: int = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD: bool = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every page (django-csp): admin, the dashboard and the API docs load scripts
# and styles from this origin only (the Swagger UI comes from drf-spectacular-sidecar, not a CDN). Inline
# style attributes stay allowed: the admin and the progress bars use them; inline scripts do not.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp_constants.SELF],
        "script-src": [csp_constants.SELF],
        "style-src": [csp_constants.SELF, csp_constants.UNSAFE_INLINE],
        "img-src": [csp_constants.SELF, "data:"],
        "font-src": [csp_constants.SELF, "data:"],
        "connect-src": [csp_constants.SELF],
        "object-src": [csp_constants.NONE],
        "base-uri": [csp_constants.SELF],
        "form-action": [csp_constants.SELF],
        "frame-ancestors": [csp_constants.NONE],
    }
}

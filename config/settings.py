"""Django settings. Everything comes from the environment (django-environ); defaults are the embedded demo.

``DJANGO_ENV=production`` switches to strict mode: SECRET_KEY and FIELD_ENCRYPTION_KEY must be set.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    CheckedEnv,
    database_from_env,
    dev_encryption_key,
    encryption_keys_from_env,
    redis_url_from_env,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = CheckedEnv()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV: must be 'development' or 'production', got {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG: must be off when DJANGO_ENV=production (the debug pages list every URL)")

DEV_SECRET_KEY = "django-insecure-development-only-key-not-for-production-use"  # noqa: S105 (refused in production)
if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY: required when DJANGO_ENV=production")
    if SECRET_KEY == DEV_SECRET_KEY or SECRET_KEY.startswith("django-insecure-") or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY: the development key or a weak one (under 50 characters) is refused when "
            "DJANGO_ENV=production; generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
else:
    SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)

# Fernet keys for vCenter passwords; the first encrypts, all decrypt (key rotation).
FIELD_ENCRYPTION_KEYS = encryption_keys_from_env(env.str("FIELD_ENCRYPTION_KEY", default=""))
if not FIELD_ENCRYPTION_KEYS:
    if PRODUCTION:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY: required when DJANGO_ENV=production")
    FIELD_ENCRYPTION_KEYS = [dev_encryption_key(VAR_DIR)]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    # else every page answers 400 while /healthz (any Host) tells the load balancer all is well
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS: required when DJANGO_ENV=production: the host names users reach the advisor by, "
        "comma-separated (e.g. advisor.example.com)"
    )
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "django_tables2",
    "django_htmx",
    "template_partials",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "inventory",
    "placement",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.HealthzAnyHostMiddleware",
    "config.middleware.PrivateAnswersMiddleware",
    "csp.middleware.CSPMiddleware",
    "config.middleware.StandaloneSvgMiddleware",
    "config.api_errors.ApiErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.middleware.LoginRequiredExceptApiMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# whitenoise serves /static/ under gunicorn: in production the collectstatic output (hashed, compressed names),
# in development straight from the apps' and static/ folders (no collectstatic needed).
MIDDLEWARE.insert(2, "whitenoise.middleware.WhiteNoiseMiddleware")
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "inventory.roles.roles_context",
            ],
        },
    },
]

DATABASES = {"default": database_from_env(env.str("DATABASE_URL", default=""), BASE_DIR / "db.sqlite3")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so a Celery worker process in the integration tests sees the test database.
    # One file per test process, so two local test runs never share (or delete) each other's database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
    # IMMEDIATE: a write transaction takes the write lock when it starts, so check-then-write (reservations)
    # cannot interleave the way DEFERRED transactions would.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))  # collectstatic writes here
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# ---------------------------------------------------------------- security (production mode, logins, API tokens)
# Strict in production, relaxed for the embedded demo on 127.0.0.1 (plain HTTP). TLS may end at a proxy in front:
# BEHIND_TLS_PROXY trusts its X-Forwarded-Proto/-For, SECURE_SSL_REDIRECT=false leaves the redirect to it.
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# Load balancers and probes ask over plain HTTP and do not follow a redirect to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# SECURE_COOKIES=false is only for trying production mode over plain HTTP on a private network: browsers drop
# Secure cookies over HTTP (except on localhost), so signing in would fail CSRF. check --deploy warns (W012, W016).
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=PRODUCTION)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
X_FRAME_OPTIONS = "DENY"
# Pages load scripts only from here (htmx, the app's own; no inline script anywhere, Swagger UI's setup included);
# inline style attributes stay allowed (the fabric drawings and a few templates use them), images may be data: URIs
# (Swagger UI's icons). A name that got past escaping could still not run anything.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Login lockout (django-axes): LOGIN_FAILURE_LIMIT wrong passwords for one username from one address lock that
# pair out for LOGIN_COOLOFF_MINUTES, on the login page, the admin's and POST /api/token/ alike. An admin
# unlocks early by deleting the row under Admin > Axes > Access attempts (or `manage.py axes_reset_username NAME`).
INSTALLED_APPS += ["axes", "knox"]
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"
# The client address is the socket's, unless a trusted proxy in front sets X-Forwarded-For (a client could
# otherwise pick a fresh "address" per try).
AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if BEHIND_TLS_PROXY else ("REMOTE_ADDR",)
AXES_IPWARE_PROXY_COUNT = 1 if BEHIND_TLS_PROXY else None

# API tokens (django-rest-knox): stored as a SHA-512 digest, shown once by POST /api/token/, expire after
# API_TOKEN_TTL_DAYS; DELETE /api/token/ revokes the token it is sent with.
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env.int("API_TOKEN_TTL_DAYS", default=30)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
# API throttles (DRF, counted in each process's cache): per client address for anonymous requests and the token
# endpoint, per user for everything else; 429 with Retry-After beyond them.
API_THROTTLE_RATES = {
    "anon": env.str("API_THROTTLE_ANON", default="60/minute"),
    "user": env.str("API_THROTTLE_USER", default="3000/minute"),
    "token": env.str("API_THROTTLE_TOKEN", default="10/minute"),
}

# Request bodies: 1 MiB is plenty for JSON and nvidia-smi captures; larger is a 413 (JSON under /api/).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with `WWW-Authenticate: Token` (not 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # DRF's parsers, but JSON nested too deep to decode is a 400 (config/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["config.throttles.AnonThrottle", "config.throttles.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": API_THROTTLE_RATES,
    "NUM_PROXIES": 1 if BEHIND_TLS_PROXY else 0,  # the throttles' client address: see AXES_IPWARE_* above
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "inventory.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.api_schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GPU Placement Advisor API",
    "DESCRIPTION": "Inventory, GPU fabric topology and topology-aware placement for vSphere GPU VMs.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Separate request and response components: write-only fields (a vCenter's password) never appear in a
    # response schema, read-only ones never in a request body.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "GraphicsTypeEnum": "inventory.models.GraphicsType",
        "SyncStatusEnum": "inventory.models.SyncStatus",
        "GpuConsumerKindEnum": "inventory.models.GpuConsumer.Kind",
        "ResourceDomainKindEnum": "inventory.models.ResourceDomain.Kind",
        "ReservationStatusEnum": "placement.models.Reservation.Status",
        "PowerStateEnum": "inventory.models.PowerState",
        "EvacuationEntryKindEnum": [("vm", "vm"), ("reservation", "reservation")],
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: a real broker when REDIS_URL is set, otherwise tasks run eagerly in-process (the embedded demo).
REDIS_URL = redis_url_from_env(env.str("REDIS_URL", default=""))
# Seconds to connect to / wait on Redis (broker, locks, health): a dead broker is an error, never a hang.
REDIS_TIMEOUT = env.float("REDIS_TIMEOUT", default=2.0)
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("SYNC_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
# With acks_late a message whose worker died is redelivered after the visibility timeout: just longer than the
# longest sync (the hard time limit), not Redis' default hour.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 60,
    "socket_connect_timeout": REDIS_TIMEOUT,
    "socket_timeout": max(REDIS_TIMEOUT, 5.0),
}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT
# A worker that cannot reach the broker gives up after this many attempts (2 s, 4 s, ... apart: 5 is about 30 s),
# at start or after losing it, and exits non-zero with the broker's error, for its supervisor (compose, systemd)
# to restart it; meanwhile /healthz reports no worker. Celery's default (100) retried silently for an hour.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = env.int("BROKER_CONNECTION_MAX_RETRIES", default=5)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
# django-celery-beat's DatabaseScheduler that also notes its own tick in Redis for /healthz (inventory/beat.py).
CELERY_BEAT_SCHEDULER = "inventory.beat:Scheduler"
# Capacity what-ifs: at most WHATIF_MAX_PARALLEL run at once (0: no limit); others stay queued and wait for a
# free slot without holding a worker process, so a worker with 2 or more processes always has one for syncs and
# the watchdog. WHATIF_QUEUE sends them to a queue of their own: a plain `celery -A config worker` still runs it
# with everything else; a deployment can give it its own worker (`-Q whatif`) and run the other with `-Q celery`.
WHATIF_MAX_PARALLEL = env.int("WHATIF_MAX_PARALLEL", default=1)
WHATIF_QUEUE = env.str("WHATIF_QUEUE", default="")
CELERY_TASK_DEFAULT_QUEUE = "celery"
if WHATIF_QUEUE and WHATIF_QUEUE != CELERY_TASK_DEFAULT_QUEUE:
    CELERY_TASK_QUEUES = {CELERY_TASK_DEFAULT_QUEUE: {}, WHATIF_QUEUE: {}}  # each bound by its own name
    CELERY_TASK_ROUTES = {"placement.tasks.whatif_task": {"queue": WHATIF_QUEUE}}
# Per-vCenter syncs are PeriodicTask rows (created with each vCenter); these are the housekeeping ones.
SYNC_WATCHDOG_SECONDS = env.float("SYNC_WATCHDOG_SECONDS", default=30.0)
CELERY_BEAT_SCHEDULE = {
    "expire-and-reconcile-reservations": {"task": "placement.tasks.expire_reservations_task", "schedule": 300.0},
    "reap-lost-whatif-runs": {"task": "placement.tasks.reap_whatif_runs_task", "schedule": 300.0},
    "purge-long-stale-inventory": {"task": "inventory.tasks.purge_stale_task", "schedule": 6 * 3600.0},
    "sync-watchdog": {
        "task": "inventory.tasks.sync_watchdog_task",
        "schedule": SYNC_WATCHDOG_SECONDS,
        "options": {"expires": SYNC_WATCHDOG_SECONDS},
    },
}
CELERY_TIMEZONE = TIME_ZONE

# Sync orchestration (docs/operations.md): a running sync writes a heartbeat and refreshes its lock every
# SYNC_HEARTBEAT_SECONDS; the watchdog marks it lost (and frees its lock) after SYNC_LOST_AFTER seconds of silence.
# A queued run no worker started within SYNC_QUEUE_TIMEOUT seconds (after its retry time) is lost too.
SYNC_HEARTBEAT_SECONDS = env.float("SYNC_HEARTBEAT_SECONDS", default=10.0)
SYNC_LOST_AFTER = env.float("SYNC_LOST_AFTER", default=45.0)
SYNC_LOCK_TTL = env.float("SYNC_LOCK_TTL", default=60.0)
SYNC_QUEUE_TIMEOUT = env.float("SYNC_QUEUE_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 300.0)
# Sooner than that, the watchdog marks a queued run lost when its task message is in no queue and held by no
# worker (Redis restarted without its data): checked once the run has waited SYNC_QUEUE_GRACE seconds.
SYNC_QUEUE_GRACE = env.float("SYNC_QUEUE_GRACE", default=60.0)
# Staleness (seconds): hosts of a vCenter whose last sync failed, or succeeded longer ago than STALE_WARN_AFTER,
# carry a warning in every plan; past STALE_EXCLUDE_AFTER they are not planned on.
STALE_WARN_AFTER = env.int("STALE_WARN_AFTER", default=15 * 60)
STALE_EXCLUDE_AFTER = env.int("STALE_EXCLUDE_AFTER", default=24 * 3600)
# Health (/healthz): how long to wait for a worker's ping (tried twice on a connection error), and how old beat's
# last tick (noted by beat itself) may be.
HEALTH_WORKER_TIMEOUT = env.float("HEALTH_WORKER_TIMEOUT", default=1.0)
# The overview's health panel reuses a worker check up to this old (seconds, shared through Redis; /healthz never).
HEALTH_PANEL_MAX_AGE = env.float("HEALTH_PANEL_MAX_AGE", default=15.0)
HEALTH_BEAT_MAX_AGE = env.float("HEALTH_BEAT_MAX_AGE", default=3 * SYNC_WATCHDOG_SECONDS)

# Placement admission: how many vCPUs of powered-on VMs and reservations a host's logical CPU may carry. 1 (the
# default) allows no CPU overcommit on GPU hosts, the usual advice for inference VMs; vSphere itself allows up to
# 32 per core. A VM never gets more vCPUs than its host has logical CPUs, whatever this says.
VCPUS_PER_LOGICAL_CPU = env.float("VCPUS_PER_LOGICAL_CPU", default=1.0)
if not 1 <= VCPUS_PER_LOGICAL_CPU <= 32:
    raise ImproperlyConfigured(
        f"VCPUS_PER_LOGICAL_CPU: must be between 1 (no CPU overcommit) and 32 (vSphere's limit), "
        f"got {VCPUS_PER_LOGICAL_CPU:g}"
    )

# Inventory behaviour.
INVENTORY_STALE_RETENTION_DAYS = env.int("INVENTORY_STALE_RETENTION_DAYS", default=14)
# Finished sync runs older than this are deleted (each vCenter keeps its newest run and newest success per trigger).
SYNC_HISTORY_RETENTION_DAYS = env.int("SYNC_HISTORY_RETENTION_DAYS", default=90)
# A vCenter's CA file must lie under this folder when set (else any path the process can read): the admins who
# register vCenters then cannot use the field to learn which files exist on the server.
VCENTER_CA_DIR = env.str("VCENTER_CA_DIR", default="")
VCENTER_DEFAULT_SYNC_MINUTES = env.int("VCENTER_DEFAULT_SYNC_MINUTES", default=5)
VCENTER_CONNECT_TIMEOUT = env.int("VCENTER_CONNECT_TIMEOUT", default=30)
SYNC_RETRY_BASE_SECONDS = env.float("SYNC_RETRY_BASE_SECONDS", default=30.0)
RESERVATION_TTL_MINUTES = env.int("RESERVATION_TTL_MINUTES", default=60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"no_traceback": {"()": "config.logfilters.NoTraceback"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "one_line": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["no_traceback"]},
    },
    "loggers": {
        "pyVmomi": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # axes: lockouts only
        # a request for a Host not in ALLOWED_HOSTS (scanners asking by IP address): its 400 and one line, no traceback
        "django.security.DisallowedHost": {"handlers": ["one_line"], "level": "WARNING", "propagate": False},
    },
}

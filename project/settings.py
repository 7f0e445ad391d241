"""Settings for the call scoring service, read from the environment (12-factor).

DATABASE_URL  default: a SQLite file beside manage.py; PostgreSQL in production
BROKER_URL    default: redis://127.0.0.1:6379/0; redis:// or amqp://
SECRET_KEY    required when DEBUG is off
DEBUG         "1"/"true" turns it on (off by default)
ALLOWED_HOSTS comma-separated (default: localhost names when DEBUG is on)
"""

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "local-development-only-not-secret"
elif not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    # Django's own bar (check security.W009): session and CSRF tokens are signed with this key.
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for production: use at least 50 random characters, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
if not ALLOWED_HOSTS and DEBUG:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

# HTTPS, for a deployment behind TLS (each is off by default so that plain-HTTP local use works);
# `manage.py check --deploy` is clean with DEBUG off and these set as the README says.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE")
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE")
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
if env_bool("SECURE_PROXY_SSL_HEADER"):
    # Only behind a proxy that sets X-Forwarded-Proto itself and strips it from clients.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

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
    "django_dramatiq",
    "django_htmx",
    "csp",
    "scoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the WSGI process in production (after collectstatic).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "scoring.api.middleware.RequestStringsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Content-Security-Policy (django-csp): everything the pages, the admin and /docs load comes from
# this server; scripts never inline, nothing framed, forms post only here. Inline style attributes
# stay allowed: the admin's progress bars and Swagger UI use them (the pages themselves have none).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "project.urls"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WSGI_APPLICATION = "project.wsgi.application"

# SQLite must survive several worker threads writing at once: WAL journal,
# a busy timeout, and IMMEDIATE transactions so writers queue instead of
# failing with "database is locked" on lock upgrade.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {**SQLITE_OPTIONS, **DATABASES["default"].get("OPTIONS", {})}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies are made by collectstatic; without them files are served as they are.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# The pages for people sign in with Django's session login.
LOGIN_URL = "web-login"
LOGIN_REDIRECT_URL = "web-home"
LOGOUT_REDIRECT_URL = "web-home"

# Large scoring jobs and call batches arrive as one JSON body.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024 * 1024)
# /file/create stores the file in the database: one file's bytes at most.
SCORING_FILE_MAX_BYTES = env_int("SCORING_FILE_MAX_BYTES", 10 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scoring.api.auth.ApiKeyBasicAuthentication",
        "scoring.api.auth.ApiKeyBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["scoring.api.parsers.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "scoring.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "scoring.api.openapi.AutoSchema",
}

# GET /openapi.json and GET /docs (Swagger UI, its assets served from this server, never a CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "Call scoring service",
    "DESCRIPTION": "Weave's trace-server API (the part the weave client uses) and POST /calls/score, which "
    "scores calls asynchronously. Authenticate with an API key: HTTP Basic (any username, the key as "
    "password) or Bearer.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Session cookies serve the admin; API clients use keys.
    "AUTHENTICATION_WHITELIST": [
        "scoring.api.auth.ApiKeyBasicAuthentication",
        "scoring.api.auth.ApiKeyBearerAuthentication",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}


REDIS_SCHEMES = {"redis", "rediss", "unix"}


def cache_settings(url: str) -> dict:
    """The shared cache (failed-login counters): Redis when one is named, else this process's memory."""
    if urlsplit(url).scheme in REDIS_SCHEMES:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": "scoring"}
    return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}


def broker_settings(url: str) -> dict:
    """The django_dramatiq broker configuration for a redis:// or amqp:// URL."""
    scheme = urlsplit(url).scheme
    if scheme in REDIS_SCHEMES:
        broker = "dramatiq.brokers.redis.RedisBroker"
    elif scheme in {"amqp", "amqps"}:
        broker = "dramatiq.brokers.rabbitmq.RabbitmqBroker"
    else:
        raise ImproperlyConfigured(f"BROKER_URL must start with redis:// or amqp://, got {scheme!r}.")
    return {
        "BROKER": broker,
        "OPTIONS": {"url": url},
        "MIDDLEWARE": [
            "dramatiq.middleware.AgeLimit",
            "dramatiq.middleware.TimeLimit",
            "dramatiq.middleware.Callbacks",
            "dramatiq.middleware.Retries",
            "django_dramatiq.middleware.DbConnectionsMiddleware",
            "scoring.engine.middleware.WorkerHousekeeping",
        ],
    }


BROKER_URL = os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0")
DRAMATIQ_BROKER = broker_settings(BROKER_URL)
# CACHE_URL defaults to the broker's Redis (its keys are prefixed "scoring:"). It is the Redis the
# whole fleet shares: the failed-login counters, the blocked providers and the providers'
# concurrency slots. With RabbitMQ as the broker, set it to a Redis URL; without one each process
# keeps its own counters and nothing is blocked or limited across processes.
CACHE_URL = os.environ.get("CACHE_URL") or BROKER_URL
CACHES = {"default": cache_settings(CACHE_URL)}
SCORING_SHARED_REDIS_URL = CACHES["default"].get("LOCATION", "")  # cache_settings named a Redis, or none

# API authentication. Password login on API routes runs the password hasher per request, so it is
# off unless asked for; failed attempts are counted per client address and per username over
# SCORING_AUTH_FAILURE_WINDOW seconds, and past their limit refused with 429 and Retry-After.
SCORING_API_PASSWORD_LOGIN = env_bool("SCORING_API_PASSWORD_LOGIN")
SCORING_AUTH_FAILURES_PER_ADDRESS = env_int("SCORING_AUTH_FAILURES_PER_ADDRESS", 30)
SCORING_AUTH_FAILURES_PER_USERNAME = env_int("SCORING_AUTH_FAILURES_PER_USERNAME", 5)
SCORING_AUTH_FAILURE_WINDOW = env_int("SCORING_AUTH_FAILURE_WINDOW", 300)
SCORING_AUTH_THROTTLE_CACHE = "default"
DRAMATIQ_AUTODISCOVER_MODULES = ["engine.actors"]

# Scoring limits and behaviour.
SCORING_MAX_PAIRS_PER_JOB = env_int("SCORING_MAX_PAIRS_PER_JOB", 100_000)
SCORING_MAX_ATTEMPTS = env_int("SCORING_MAX_ATTEMPTS", 5)
# A call that has started but not ended when it is to be scored is waited for (task "waiting"),
# polled every SCORING_CALL_WAIT_POLL seconds, up to this long after the job was submitted.
SCORING_CALL_WAIT_SECONDS = float(os.environ.get("SCORING_CALL_WAIT_SECONDS", "3600"))
SCORING_CALL_WAIT_POLL = float(os.environ.get("SCORING_CALL_WAIT_POLL", "10"))
# On PostgreSQL a worker process records the results of its fast scorers in shared transactions.
SCORING_GROUP_COMMIT = env_bool("SCORING_GROUP_COMMIT", True)
# Seconds one scoring may take, per scorer family (class name), as JSON; "default" for the rest.
# A scoring over its limit is interrupted and tried again, up to SCORING_MAX_ATTEMPTS.
SCORING_TIME_LIMITS = {
    "default": 60,
    "LLMAsAJudgeScorer": 300,
    "RemoteScorer": 120,
    **json.loads(os.environ.get("SCORING_TIME_LIMITS") or "{}"),
}
# A worker renews the lease of each task it runs every SCORING_HEARTBEAT_SECONDS; a running task
# whose lease has expired was abandoned by a dead worker, and the reconciler (every
# SCORING_RECONCILE_SECONDS, in one worker process at a time) enqueues it again.
SCORING_TASK_LEASE_SECONDS = env_int("SCORING_TASK_LEASE_SECONDS", 30)
SCORING_HEARTBEAT_SECONDS = float(os.environ.get("SCORING_HEARTBEAT_SECONDS", "5"))
SCORING_RECONCILE_SECONDS = float(os.environ.get("SCORING_RECONCILE_SECONDS", "15"))
# A worker process silent this long is dead: its fetched messages go back to the queue.
SCORING_DEAD_WORKER_SECONDS = float(os.environ.get("SCORING_DEAD_WORKER_SECONDS", "20"))
# Queued tasks of jobs younger than this, and waiting tasks less overdue, are left alone.
SCORING_RECONCILE_GRACE_SECONDS = float(os.environ.get("SCORING_RECONCILE_GRACE_SECONDS", "10"))
# Transient failures (rate limits, provider errors, timeouts) wait base * 2^(attempt-1) seconds,
# jittered, at most the max, and honouring Retry-After.
# Online scoring (Weave Monitors): the matcher in each worker process looks for ended calls every
# SCORING_MONITOR_POLL_SECONDS, up to SCORING_MONITOR_BATCH at a time; each web process keeps which
# projects have an active monitor for SCORING_MONITOR_FLAG_SECONDS (so a new monitor takes effect
# within that, and a publish in the same process at once).
SCORING_MONITOR_POLL_SECONDS = float(os.environ.get("SCORING_MONITOR_POLL_SECONDS", "0.2"))
SCORING_MONITOR_BATCH = env_int("SCORING_MONITOR_BATCH", 2_000)
SCORING_MONITOR_FLAG_SECONDS = float(os.environ.get("SCORING_MONITOR_FLAG_SECONDS", "1"))
# The longest a worker's consumer sleeps between fetches when the queue is empty or its prefetch is
# full (Dramatiq's default is 1,000 ms, which a monitored call's score would wait for under load).
SCORING_WORKER_IDLE_MS = env_int("SCORING_WORKER_IDLE_MS", 100)
# Every this many seconds a worker process hands the heap memory its threads freed back to the
# system (glibc's malloc_trim; scoring.engine.memory says why); 0 never.
SCORING_WORKER_TRIM_SECONDS = float(os.environ.get("SCORING_WORKER_TRIM_SECONDS", "30"))
SCORING_RETRY_BASE_DELAY = float(os.environ.get("SCORING_RETRY_BASE_DELAY", "1"))
SCORING_RETRY_MAX_DELAY = float(os.environ.get("SCORING_RETRY_MAX_DELAY", "60"))

# What one scoring may allocate from a tenant's data: a judge's rendered prompt (characters), and
# the text a built-in scorer compares or parses (characters of output and of each input).
SCORING_JUDGE_PROMPT_MAX_CHARS = env_int("SCORING_JUDGE_PROMPT_MAX_CHARS", 200_000)
SCORING_SCORER_INPUT_MAX_CHARS = env_int("SCORING_SCORER_INPUT_MAX_CHARS", 1_000_000)

# LOG_FORMAT=json: one JSON object per line (python-json-logger), with job_id and task_id on the
# lines a worker emits while it scores a task (scoring.logs); "plain" otherwise.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"task_context": {"()": "scoring.logs.TaskContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(threadName)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "threadName": "thread"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["task_context"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Scorer providers and outbound requests (issue 3)
#
# SCORING_PROVIDERS  JSON object: provider name (the part of an LLM judge's llm_model_id before
#                    the first "/") -> {"base_url": ..., "api_key": ... or "api_key_env": NAME,
#                    "concurrency": N}; e.g. {"local": {"base_url": "http://127.0.0.1:8000/v1"}}.
# OPENAI_API_KEY, OPENAI_BASE_URL  shorthand for the "openai" provider.
# SCORING_OUTBOUND_ALLOWLIST  comma-separated CIDRs, IPs or host names that remote scorers may
#                    reach although they are loopback/private (e.g. "127.0.0.1" in tests), each
#                    optionally with a port ("10.0.0.5:8080", "[fd00::5]:8080"); an entry without
#                    a port opens every port of that host.
# SCORING_OUTBOUND_CREDENTIALS  JSON object: origin ("https://host:port") -> {"bearer": token}
#                    and/or {"headers": {name: value}}; sent only to that exact origin.


def _scoring_providers() -> dict:
    import json

    try:
        providers = json.loads(os.environ.get("SCORING_PROVIDERS") or "{}")
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"SCORING_PROVIDERS must be a JSON object: {exc.msg}") from None
    if not isinstance(providers, dict) or not all(isinstance(v, dict) for v in providers.values()):
        raise ImproperlyConfigured('SCORING_PROVIDERS must map provider names to {"base_url": ...} objects.')
    if "openai" not in providers and (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        providers["openai"] = {
            "base_url": os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
            "api_key_env": "OPENAI_API_KEY",
        }
    return providers


SCORING_PROVIDERS = _scoring_providers()
# Concurrent requests per provider across all worker processes (Redis broker only); a provider's
# "concurrency" overrides it. A worker waits up to SLOT_WAIT seconds for a slot, then retries the
# task later; a slot held by a killed worker is freed SLOT_TTL seconds after the last use.
SCORING_PROVIDER_CONCURRENCY = env_int("SCORING_PROVIDER_CONCURRENCY", 16)
SCORING_PROVIDER_SLOT_WAIT = float(os.environ.get("SCORING_PROVIDER_SLOT_WAIT", "30"))
SCORING_PROVIDER_SLOT_TTL = env_int("SCORING_PROVIDER_SLOT_TTL", 600)
# Seconds: reading a provider's answer, and connecting to any outbound host.
SCORING_HTTP_TIMEOUT = float(os.environ.get("SCORING_HTTP_TIMEOUT", "60"))
SCORING_HTTP_CONNECT_TIMEOUT = float(os.environ.get("SCORING_HTTP_CONNECT_TIMEOUT", "10"))
# Remote scorers: read timeout (Weave's is 30 s).
SCORING_REMOTE_SCORER_TIMEOUT = float(os.environ.get("SCORING_REMOTE_SCORER_TIMEOUT", "30"))
if os.environ.get("SCORING_REMOTE_SCORER_BEARER_TOKEN"):
    # A token sent to every endpoint reaches endpoints a tenant chose; it must name its origin.
    raise ImproperlyConfigured(
        "SCORING_REMOTE_SCORER_BEARER_TOKEN was removed: bind the token to its endpoint's origin with "
        'SCORING_OUTBOUND_CREDENTIALS=\'{"https://scorer.example:443": {"bearer": "..."}}\'.'
    )


def _outbound_credentials() -> dict:
    try:
        config = json.loads(os.environ.get("SCORING_OUTBOUND_CREDENTIALS") or "{}")
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"SCORING_OUTBOUND_CREDENTIALS must be a JSON object: {exc.msg}") from None
    if not isinstance(config, dict):
        raise ImproperlyConfigured('SCORING_OUTBOUND_CREDENTIALS must map origins to {"bearer": ...} objects.')
    return config


SCORING_OUTBOUND_CREDENTIALS = _outbound_credentials()
SCORING_OUTBOUND_ALLOWLIST = [
    entry.strip() for entry in os.environ.get("SCORING_OUTBOUND_ALLOWLIST", "").split(",") if entry.strip()
]

# GET /metrics (Prometheus): answered only to a scraper that sends `Authorization: Bearer
# <SCORING_METRICS_TOKEN>`, or whose address is in SCORING_METRICS_ALLOWLIST (comma-separated
# CIDRs or addresses); with neither set the endpoint does not exist (404). Worker processes write
# their values under PROMETHEUS_MULTIPROC_DIR (read by prometheus-client from the environment), so
# that the web server's scrape sums every process of the host.
SCORING_METRICS_TOKEN = os.environ.get("SCORING_METRICS_TOKEN", "")
SCORING_METRICS_ALLOWLIST = [
    entry.strip() for entry in os.environ.get("SCORING_METRICS_ALLOWLIST", "").split(",") if entry.strip()
]
# A host that runs workers and no web server: its worker processes serve the same /metrics (their
# own instruments, summed through PROMETHEUS_MULTIPROC_DIR) on this port, one process at a time.
SCORING_METRICS_PORT = env_int("SCORING_METRICS_PORT", 0)
SCORING_METRICS_HOST = os.environ.get("SCORING_METRICS_HOST", "0.0.0.0")
# Cost, budgets and fair share (README, "Cost, budgets and fair share")
#
# SCORING_PRICES  JSON object: "<provider>/<model>" (or "<provider>/*") -> {"input_per_mtok": USD,
#                 "output_per_mtok": USD}; overrides the bundled genai-prices data (self-hosted models).
SCORING_PRICES = json.loads(os.environ.get("SCORING_PRICES") or "{}")
# A job's cap when its project's budget sets none (USD; empty: no cap).
SCORING_JOB_COST_CAP_USD = os.environ.get("SCORING_JOB_COST_CAP_USD") or None
# How many calls of a request an estimate reads to measure prompt sizes (the rest are extrapolated).
SCORING_ESTIMATE_SAMPLE = env_int("SCORING_ESTIMATE_SAMPLE", 200)
# A provider answering 401/403 or a billing/quota error is blocked this long (seconds).
SCORING_PROVIDER_BLOCK_SECONDS = float(os.environ.get("SCORING_PROVIDER_BLOCK_SECONDS", "300"))
# Messages each job keeps in the broker (times its project's weight); the dispatcher refills the
# windows when they are half empty. Weights and caps (messages in the broker per project) are JSON
# objects keyed by "entity/project".
SCORING_DISPATCH_WINDOW = env_int("SCORING_DISPATCH_WINDOW", 1000)
SCORING_PROJECT_WEIGHTS = json.loads(os.environ.get("SCORING_PROJECT_WEIGHTS") or "{}")
SCORING_PROJECT_CONCURRENCY = json.loads(os.environ.get("SCORING_PROJECT_CONCURRENCY") or "{}")

"""System checks (`manage.py check`, and every command that runs them): settings that work but
quietly give up something the README promises."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks


@checks.register()
def shared_redis_named(app_configs, **kwargs):
    """With RabbitMQ as the broker, the fleet's shared Redis must come from CACHE_URL."""
    if settings.SCORING_SHARED_REDIS_URL or urlsplit(settings.BROKER_URL).scheme not in ("amqp", "amqps"):
        return []
    return [
        checks.Warning(
            "BROKER_URL is RabbitMQ and CACHE_URL names no Redis: failed-login counters, blocked providers and "
            "the providers' concurrency limits are kept by each process on its own.",
            hint="Set CACHE_URL=redis://host:6379/0 (any Redis every web and worker process reaches).",
            id="scoring.W001",
        )
    ]

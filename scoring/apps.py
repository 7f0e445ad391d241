from django.apps import AppConfig


class ScoringConfig(AppConfig):
    """The call scoring app."""

    name = "scoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the engine's actors with the broker in every process (web, worker, commands),
        # so that flows send messages to them by name (scoring.engine.broker.get_actor).
        from scoring import checks  # noqa: F401  (registers them)
        from scoring.engine import actors  # noqa: F401

"""Service endpoints: `GET /server_info` and `GET /health`."""

from django.db import connection
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

TRACE_SERVER_VERSION = "1.0.0"
MIN_WEAVE_PYTHON_VERSION = "0.0.1"


class ServerInfoApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response(
            {
                "min_required_weave_python_version": MIN_WEAVE_PYTHON_VERSION,
                "trace_server_version": TRACE_SERVER_VERSION,
            }
        )


class HealthApi(APIView):
    """200 when the database and the broker both answer, 503 naming what does not."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        checks = {"database": _check_database(), "broker": _check_broker()}
        healthy = all(v == "ok" for v in checks.values())
        return Response({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def _check_broker() -> str:
    import dramatiq

    broker = dramatiq.get_broker()
    try:
        client = getattr(broker, "client", None)
        if client is not None:
            client.ping()
        else:
            _ = broker.connection  # RabbitMQ: opening the connection is the check
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"

"""The weave client's call routes under `/v2/<entity>/<project>/`: `calls/complete` (its default
batch route: calls that have finished, start and end in one item), and `call/start` and `call/end`
(one at a time, for ops whose start must be visible before they end).

If `calls/complete` fails the client drops the batch, so it accepts what the client sends (unknown
keys such as `otel_dump` are ignored) and writes the whole batch in a few set-based statements.
The project in the path must be the project of every item."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.calls import CallEndApi, CallStartApi, EndedCallSerializer, StartedCallSerializer
from scoring.api.fields import ID_LENGTH, IsoDateTimeField, StrictListField, WeaveObjectSerializer, WeaveStringField
from scoring.services.calls import call_end, call_start, calls_complete


class PathProjectMixin:
    """Checks that the body's `project_id` is the project named by the route."""

    def validate_project_id(self, value):
        expected = self.context.get("project_id")
        if expected is not None and value != expected:
            raise serializers.ValidationError(
                serializers.ErrorDetail(f"project_id must be {expected!r}, the project in the path", code="value_error")
            )
        return value


class CompletedCallSerializer(PathProjectMixin, StartedCallSerializer, EndedCallSerializer):
    """Weave's CompleteCallSchemaForInsert: a started call's fields and an ended call's together."""

    id = WeaveStringField(min_length=1, max_length=ID_LENGTH)
    trace_id = WeaveStringField(min_length=1, max_length=ID_LENGTH)
    started_at = IsoDateTimeField()
    ended_at = IsoDateTimeField()


def path_project_id(entity: str, project: str) -> str:
    return f"{entity}/{project}"


class CallsCompleteApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        batch = StrictListField(child=CompletedCallSerializer())

    def post(self, request, entity: str, project: str):
        serializer = self.InputSerializer(data=request.data, context={"project_id": path_project_id(entity, project)})
        serializer.is_valid(raise_exception=True)
        calls_complete(user=request.user, batch=serializer.validated_data["batch"])
        return Response({})


class V2CallStartApi(APIView):
    class InputSerializer(CallStartApi.InputSerializer):
        class StartSerializer(PathProjectMixin, StartedCallSerializer):
            pass

        start = StartSerializer()

    def post(self, request, entity: str, project: str):
        serializer = self.InputSerializer(data=request.data, context={"project_id": path_project_id(entity, project)})
        serializer.is_valid(raise_exception=True)
        return Response(call_start(user=request.user, start=serializer.validated_data["start"]))


class V2CallEndApi(APIView):
    class InputSerializer(CallEndApi.InputSerializer):
        class EndSerializer(PathProjectMixin, EndedCallSerializer):
            pass

        end = EndSerializer()

    def post(self, request, entity: str, project: str):
        serializer = self.InputSerializer(data=request.data, context={"project_id": path_project_id(entity, project)})
        serializer.is_valid(raise_exception=True)
        call_end(user=request.user, end=serializer.validated_data["end"])
        return Response({})

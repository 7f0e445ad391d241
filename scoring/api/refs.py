"""`POST /refs/read_batch`: the values named by a list of Weave refs (`{refs}` -> `{vals}`)."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import StrictListField, WeaveObjectSerializer, WeaveStringField
from scoring.selectors.refs import refs_read_batch


class RefsReadBatchApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        refs = StrictListField(child=WeaveStringField())

    class OutputSerializer(serializers.Serializer):
        vals = serializers.ListField(child=serializers.JSONField(allow_null=True))

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vals = refs_read_batch(user=request.user, refs=serializer.validated_data["refs"])
        return Response(self.OutputSerializer({"vals": vals}).data)

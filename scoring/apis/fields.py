"""Strict serializer fields: JSON types are checked, never coerced (a number is not a string),
and their errors carry pydantic's type names so 422 bodies match the contract."""

from rest_framework import serializers
from rest_framework.fields import empty


class StrictStringField(serializers.Field):
    """A JSON string, taken as is."""

    default_error_messages = {
        "required": "Field required",
        "string_type": "Input should be a valid string",
    }

    def validate_empty_values(self, data):
        # Only absence is "empty"; null goes through to_internal_value and its type check.
        if data is empty:
            return super().validate_empty_values(data)
        if data is None and self.allow_null:
            return True, None
        return False, data

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("string_type")
        return data

    def to_representation(self, value):
        return value


class StrictListField(serializers.ListField):
    """A JSON array, each item checked by `child`."""

    default_error_messages = {
        "required": "Field required",
        "list_type": "Input should be a valid list",
    }

    def validate_empty_values(self, data):
        if data is empty:
            return super().validate_empty_values(data)
        return False, data

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("list_type")
        return super().to_internal_value(data)


class StrictObjectSerializer(serializers.Serializer):
    """A JSON object with exactly the declared fields (additionalProperties: false)."""

    forbid_extra = True

    def validate_empty_values(self, data):
        # A body of `null` is "not an object", reported by to_internal_value.
        if data is empty:
            return super().validate_empty_values(data)
        return False, data

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {
                    "non_field_errors": [
                        serializers.ErrorDetail(
                            "Input should be a valid dictionary or object to extract fields from",
                            code="model_attributes_type",
                        )
                    ]
                }
            )
        errors = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail)
            value = None
        if self.forbid_extra:
            for key in data:
                if key not in self.fields:
                    errors[key] = [serializers.ErrorDetail("Extra inputs are not permitted", code="extra_forbidden")]
        if errors:
            raise serializers.ValidationError(errors)
        return value

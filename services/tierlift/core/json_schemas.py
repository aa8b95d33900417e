"""JSON Schemas given by the policy (a workload's json_schema judge): checked once when the
policy loads, and again where an event carries one."""

from __future__ import annotations

import json

import jsonschema


def schema_validator(schema_text: str) -> jsonschema.protocols.Validator | str:
    """A validator for the JSON Schema in `schema_text`, or why it is not one."""
    try:
        schema = json.loads(schema_text)
        if not isinstance(schema, dict | bool):
            return "json_schema must be a JSON object"
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
    except (ValueError, RecursionError, jsonschema.SchemaError) as exc:  # JSONDecodeError is a ValueError
        return f"json_schema is not a JSON Schema: {str(exc).splitlines()[0][:200]}"
    return validator(schema)

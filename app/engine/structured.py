"""Structured output: the schema sent to the model and validation of its answer."""

from __future__ import annotations

import re
from typing import Any

import orjson
from jsonschema import exceptions as schema_exceptions
from jsonschema import validators

from app.engine.models.base import OutputSchema

# Keywords OpenAI's strict structured-output mode does not accept.
_NOT_STRICT = frozenset(
    {
        "allOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "patternProperties",
        "unevaluatedProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedItems",
        "contains",
        "minContains",
        "maxContains",
        "uniqueItems",
    }
)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class OutputValidationError(ValueError):
    """The model's answer is not JSON, or does not match the output schema."""


def output_schema(schema: dict[str, Any]) -> OutputSchema:
    """What the provider receives: a name from the title, strict only when allowed."""
    title = schema.get("title")
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", title)[:64] if isinstance(title, str) and title else ""
    return OutputSchema(name=name or "output", schema=schema, strict=allows_strict(schema))


def content_type(schema: dict[str, Any]) -> str:
    title = schema.get("title")
    return title if isinstance(title, str) and title else "output"


def allows_strict(schema: dict[str, Any]) -> bool:
    """True when the schema fits OpenAI strict mode: an object root, every object closed
    (`additionalProperties: false`) with all its properties required, no unsupported keyword."""
    return schema.get("type") == "object" and _strict_node(schema)


def _strict_node(node: Any) -> bool:
    if isinstance(node, list):
        return all(_strict_node(item) for item in node)
    if not isinstance(node, dict):
        return True
    if _NOT_STRICT & node.keys():
        return False
    types = node.get("type")
    if types == "object" or (isinstance(types, list) and "object" in types):
        properties = node.get("properties", {})
        if node.get("additionalProperties") is not False:
            return False
        if set(node.get("required", [])) != set(properties):
            return False
    children = [
        node.get(key) for key in ("items", "prefixItems", "anyOf") if node.get(key) is not None
    ]
    for key in ("properties", "$defs", "definitions"):
        if isinstance(node.get(key), dict):
            children.extend(node[key].values())
    return all(_strict_node(child) for child in children)


def parse_output(text: str, schema: dict[str, Any]) -> Any:
    """The answer parsed and validated; raises OutputValidationError with a readable reason."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OutputValidationError(f"the answer is not valid JSON ({exc})") from None
    validator = validators.validator_for(schema)(schema)
    error = schema_exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise OutputValidationError(f"at {where}: {error.message}")
    return value


def schema_errors(schema: Any) -> list[str]:
    """Problems with a JSON Schema itself (empty when it is valid)."""
    if not isinstance(schema, dict):
        return ["must be a JSON Schema object"]
    try:
        validators.validator_for(schema).check_schema(schema)
    except schema_exceptions.SchemaError as exc:
        return [exc.message]
    return []

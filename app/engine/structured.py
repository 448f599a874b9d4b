"""Structured output: the schema sent to the model and validation of its answer."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
from jsonschema import exceptions as schema_exceptions
from jsonschema import validators
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, specification_with

from app.engine.models.base import OutputSchema

if TYPE_CHECKING:
    from referencing._core import Resolver  # the type `Registry.resolver()` returns

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


class UnusableSchemaError(ValueError):
    """The output schema itself cannot validate anything (not the answer's fault)."""


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
    try:
        error = schema_exceptions.best_match(validator.iter_errors(value))
    except Unresolvable as exc:  # a schema stored before definitions were checked for this
        raise UnusableSchemaError(f"the output schema cannot be used: {exc}") from None
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise OutputValidationError(f"at {where}: {error.message}")
    return value


def schema_errors(schema: Any) -> list[str]:
    """Problems with a JSON Schema itself (empty when it is valid): it must be
    valid against its metaschema, and every `$ref` in it must resolve within
    it. (Validation would otherwise fail the first time a value reaches an
    unresolvable `$ref`: nothing is fetched from the network.)"""
    if not isinstance(schema, dict):
        return ["must be a JSON Schema object"]
    try:
        validators.validator_for(schema).check_schema(schema)
        return _unresolvable_refs(schema)
    except schema_exceptions.SchemaError as exc:
        return [exc.message]
    except RecursionError:
        return ["the schema is nested too deeply"]


def _unresolvable_refs(schema: dict[str, Any]) -> list[str]:
    dialect = schema.get("$schema")
    specification = DRAFT202012
    if isinstance(dialect, str):
        specification = specification_with(dialect, default=DRAFT202012)
    root = specification.create_resource(schema)
    problems: list[str] = []

    def visit(resource: Resource[Any], resolver: Resolver[Any]) -> None:
        contents = resource.contents
        if isinstance(contents, dict):
            for keyword in ("$ref", "$dynamicRef"):
                ref = contents.get(keyword)
                if not isinstance(ref, str):
                    continue
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    problems.append(f"{keyword} {ref!r} does not resolve within the schema")
        for subresource in resource.subresources():
            visit(subresource, resolver.in_subresource(subresource))

    visit(root, Registry().resolver_with_root(root))
    return problems

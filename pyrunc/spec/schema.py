"""JSON-schema validation of config.json and state JSON against `oci-schemas/`.

Imports jsonschema lazily: it costs ~70 ms, so commands that never validate a
config never load it. Errors come back as (json_path, message) pairs, worded
for people: `process.args: must be an array, not a string`.
"""

from __future__ import annotations

from pyrunc import oslite as os

CONFIG_SCHEMA = "config-schema.json"
STATE_SCHEMA = "state-schema.json"

_validators: dict = {}


def schema_dir() -> str:
    """Where the schemas live: packaged next to the code, or the source tree's
    top-level `oci-schemas/` when running from a checkout."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (os.path.join(here, "oci_schemas"), os.path.join(os.path.dirname(here), "oci-schemas")):
        if os.path.isfile(os.path.join(candidate, CONFIG_SCHEMA)):
            return candidate
    raise FileNotFoundError(f"oci-schemas not found near {here}")


def _validator(name: str):
    validator = _validators.get(name)
    if validator is None:
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7

        from pyrunc import jsonlite

        directory = schema_dir()
        resources = []
        for file in sorted(os.listdir(directory)):
            if file.endswith(".json"):
                with open(os.path.join(directory, file), "rb") as f:
                    contents = jsonlite.loads(f.read())
                resources.append((file, Resource.from_contents(contents, default_specification=DRAFT7)))
        registry = Registry().with_resources(resources)
        schema = registry.contents(name)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
        validator = cls(schema, registry=registry)
        _validators[name] = validator
    return validator


def validate(doc, schema: str = CONFIG_SCHEMA) -> list[tuple[str, str]]:
    """Every schema violation in `doc`, most relevant first, as (path, message)."""
    from jsonschema.exceptions import best_match

    problems = []
    seen = set()
    for error in sorted(_validator(schema).iter_errors(doc), key=_shallow_first):
        # For oneOf/anyOf, best_match descends to the branch that came closest,
        # so the path names the real field (linux.namespaces[0].type).
        while error.context:
            error = best_match(error.context)
        problem = (_path_of(error), _message_of(error))
        if problem not in seen:
            seen.add(problem)
            problems.append(problem)
    return problems


def _shallow_first(error):
    """A missing ociVersion before a bad mount option; then by path."""
    return (len(error.absolute_path), [(isinstance(p, str), p) for p in error.absolute_path])


def format_path(parts) -> str:
    """['linux', 'namespaces', 0, 'type'] → 'linux.namespaces[0].type';
    a key that is not a plain name is quoted: linux.sysctl["net.core.somaxconn"]."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.isidentifier():
            out += f"[{_show(part)}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _path_of(error) -> str:
    parts = list(error.absolute_path)
    if error.validator == "required":
        missing = _missing_property(error)
        if missing is not None:
            parts.append(missing)
    return format_path(parts)


def _missing_property(error):
    for name in error.validator_value:
        if isinstance(error.instance, dict) and name not in error.instance and error.message.startswith(repr(name)):
            return name
    return None


_TYPE_NAMES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "null",
}


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _show(value) -> str:
    from pyrunc import jsonlite

    try:
        text = jsonlite.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message_of(error) -> str:
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    custom = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if custom and kind not in ("required", "type"):
        return f"{custom}, not {_show(instance)}"
    if kind == "required":
        return "is required"
    if kind == "type":
        types = value if isinstance(value, list) else [value]
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        return f"must be {wanted}, not {_json_type(instance)}"
    if kind == "enum":
        if len(value) == 1:
            return f"must be {_show(value[0])}, not {_show(instance)}"
        choices = ", ".join(_show(v) for v in value)
        return f"must be one of {choices}; got {_show(instance)}"
    if kind == "const":
        return f"must be {_show(value)}, not {_show(instance)}"
    if kind == "pattern":
        return f"{_show(instance)} does not match the pattern {value}"
    if kind == "minimum":
        return f"must be at least {value}, not {_show(instance)}"
    if kind == "maximum":
        return f"must be at most {value}, not {_show(instance)}"
    if kind == "exclusiveMinimum":
        return f"must be greater than {value}, not {_show(instance)}"
    if kind == "exclusiveMaximum":
        return f"must be less than {value}, not {_show(instance)}"
    if kind in ("minItems", "minLength", "minProperties"):
        if value == 1:
            return "must not be empty"
        unit = {"minItems": "items", "minLength": "characters", "minProperties": "members"}[kind]
        return f"must have at least {value} {unit}"
    if kind in ("maxItems", "maxLength", "maxProperties"):
        unit = {"maxItems": "items", "maxLength": "characters", "maxProperties": "members"}[kind]
        return f"must have at most {value} {unit}"
    if kind == "uniqueItems":
        return "must not contain duplicates"
    if kind in ("oneOf", "anyOf"):
        return f"{_show(instance)} is not valid here"
    if kind == "additionalProperties":
        return error.message
    return error.message

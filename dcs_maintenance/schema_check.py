"""Schedule documents against `schedules/schema.json`: a compiled yes/no check, and jsonschema's errors explained.

Valid schedules pass the compiled check quickly; `jsonschema` (imported on first use, not with this
module) then reports what is wrong with the others, and `explain` turns each of its errors into
plain-language messages with the path below the error's own.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Optional

from dcs_maintenance.documents import clip, short
from dcs_maintenance.schedule_checks import PathPart, cron_problem

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schedules" / "schema.json"


# ---------------------------------------------------------------------------------------------
# The schema, and jsonschema


@functools.cache
def schema_doc() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return json.load(fh)


@functools.cache
def jsonschema_validator() -> Any:
    """Draft 2020-12, with `pattern` read as ECMA-262 does: `$` is the end of the text, not before a final newline."""
    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Any, value: str, instance: Any, _schema: dict) -> Iterable[Any]:
        if isinstance(instance, str) and _regex(value).search(instance) is None:
            yield ValidationError(f"{instance!r} does not match {value!r}")

    strict = validators.extend(Draft202012Validator, {"pattern": pattern})
    return strict(schema_doc())


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + "\\Z"
    return re.compile(pattern)


def schema_errors(doc: dict) -> Iterable[Any]:
    return jsonschema_validator().iter_errors(doc)


# ---------------------------------------------------------------------------------------------
# A compiled yes/no check of one schedule against the schema: about 25 times faster than jsonschema,
# which then only has to explain the schedules that fail. It covers the keywords schema.json uses;
# any other keyword disables it (everything then goes through jsonschema), so the schema stays the
# one definition. tests/test_loader.py checks that both agree.

Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples",
                          "format", "deprecated", "readOnly", "writeOnly"})


class _Unsupported(Exception):
    pass


def _is_integer(x: Any) -> bool:
    return (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())


_TYPES: dict[str, Check] = {
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "integer": _is_integer,
    "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "null": lambda x: x is None,
}


@functools.cache
def fast_check() -> Optional[Check]:
    """The check for one schedule (`$defs.schedule`), or None if the schema uses a keyword it does not know."""
    root = schema_doc()
    try:
        return _compile(root["$defs"]["schedule"], root)
    except (_Unsupported, KeyError, TypeError):
        return None


@functools.cache
def fast_freeze_check() -> Optional[Check]:
    """The check for one freeze (`$defs.freeze`), or None if the schema uses a keyword it does not know."""
    root = schema_doc()
    try:
        return _compile(root["$defs"]["freeze"], root)
    except (_Unsupported, KeyError, TypeError):
        return None


@functools.cache
def fast_file_check() -> Optional[Check]:
    """The check for a whole file; `loader._validate_document` gives it the file with an empty schedules list."""
    root = schema_doc()
    try:
        return _compile(root, root)
    except (_Unsupported, KeyError, TypeError):
        return None


def _compile(schema: Any, root: dict) -> Check:
    if schema is True or schema == {}:
        return lambda x: True
    if schema is False:
        return lambda x: False
    leaf = _string_leaf(schema)
    if leaf is not None:
        return leaf
    checks: list[Check] = []
    for kw, v in schema.items():
        if kw in _ANNOTATIONS:
            continue
        if kw == "$ref":
            if not isinstance(v, str) or not v.startswith("#/"):
                raise _Unsupported(kw)
            target: Any = root
            for part in v[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            checks.append(_compile(target, root))
        elif kw == "type":
            types = [_TYPES[t] for t in ([v] if isinstance(v, str) else v)]
            checks.append(types[0] if len(types) == 1 else (lambda x, ts=types: any(t(x) for t in ts)))
        elif kw == "enum":
            if not all(isinstance(e, str) for e in v):
                raise _Unsupported(kw)  # str-only enums compare like jsonschema's `equal`; others might not
            options = frozenset(v)
            checks.append(lambda x, o=options: isinstance(x, str) and x in o)
        elif kw == "pattern":
            rx = _regex(v)
            checks.append(lambda x, rx=rx: not isinstance(x, str) or rx.search(x) is not None)
        elif kw in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"):
            kind = {"L": str, "I": list, "P": dict}[kw[3]]
            if kw.startswith("min"):
                checks.append(lambda x, k=kind, n=v: not isinstance(x, k) or len(x) >= n)
            else:
                checks.append(lambda x, k=kind, n=v: not isinstance(x, k) or len(x) <= n)
        elif kw in ("minimum", "maximum"):
            low = kw == "minimum"
            checks.append(lambda x, n=v, low=low: not isinstance(x, (int, float)) or isinstance(x, bool)
                          or (x >= n if low else x <= n))
        elif kw == "required":
            checks.append(lambda x, r=tuple(v): not isinstance(x, dict) or all(k in x for k in r))
        elif kw == "dependentRequired":
            deps = tuple((k, tuple(d)) for k, d in v.items())
            checks.append(lambda x, deps=deps: not isinstance(x, dict)
                          or all(d in x for k, ds in deps if k in x for d in ds))
        elif kw in ("properties", "additionalProperties"):
            if "patternProperties" in schema or kw == "additionalProperties" and "properties" in schema:
                if "patternProperties" in schema:
                    raise _Unsupported("patternProperties")
                continue  # compiled with "properties"
            props = {k: _compile(s, root) for k, s in schema.get("properties", {}).items()}
            extra = schema.get("additionalProperties", True)
            extra_check = None if extra is True or extra is False else _compile(extra, root)
            checks.append(_object_check(props, extra is False, extra_check))
        elif kw == "items":
            item = _compile(v, root)
            checks.append(lambda x, f=item: not isinstance(x, list) or all(f(i) for i in x))
        elif kw == "propertyNames":
            key = _compile(v, root)
            checks.append(lambda x, f=key: not isinstance(x, dict) or all(f(k) for k in x))
        elif kw in ("oneOf", "anyOf", "allOf"):
            subs = [_compile(s, root) for s in v]
            if kw == "oneOf":
                checks.append(lambda x, subs=subs: sum(1 for f in subs if f(x)) == 1)
            elif kw == "anyOf":
                checks.append(lambda x, subs=subs: any(f(x) for f in subs))
            else:
                checks.append(lambda x, subs=subs: all(f(x) for f in subs))
        else:
            raise _Unsupported(kw)
    if len(checks) == 1:
        return checks[0]
    checks_t = tuple(checks)

    def check_all(x: Any) -> bool:
        for c in checks_t:  # noqa: SIM110 - a loop is twice as fast as all() over a generator here
            if not c(x):
                return False
        return True

    return check_all


def _string_leaf(schema: dict) -> Optional[Check]:
    """The common case `{type: string, minLength, maxLength, pattern, enum}` as one function."""
    keys = set(schema) - _ANNOTATIONS
    if schema.get("type") != "string" or not keys <= {"type", "minLength", "maxLength", "pattern", "enum"}:
        return None
    if "enum" in schema and not all(isinstance(e, str) for e in schema["enum"]):
        return None
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    search = _regex(schema["pattern"]).search if "pattern" in schema else None
    options = frozenset(schema["enum"]) if "enum" in schema else None

    def check(x: Any) -> bool:
        if not isinstance(x, str) or len(x) < low or (high is not None and len(x) > high):
            return False
        if search is not None and search(x) is None:
            return False
        return options is None or x in options

    return check


def _object_check(props: dict[str, Check], closed: bool, extra: Optional[Check]) -> Check:
    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        for key, value in x.items():
            f = props.get(key)
            if f is not None:
                if not f(value):
                    return False
            elif closed or (extra is not None and not extra(value)):
                return False
        return True

    return check


# ---------------------------------------------------------------------------------------------
# jsonschema errors -> (relative path, message)

_TYPE_NAMES = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "null"}
_CRON_PATTERN = "^\\s*\\S+(\\s+\\S+){4}\\s*$"
_PATTERN_MESSAGES = {
    "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$":
        "must be lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit",
    _CRON_PATTERN:
        "must be a 5-field cron expression: minute hour day-of-month month day-of-week (no seconds or year field)",
    "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$":
        "must be an IANA time zone name such as 'Asia/Shanghai' or 'UTC' (fixed offsets such as '+08:00' "
        "are not allowed)",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}$": "must be a date written YYYY-MM-DD",
    "^[0-9]+[smh]$": "must be a duration: a whole number and s, m or h, such as '30s', '15m' or '2h'",
    "^[A-Za-z0-9_-]{1,64}$": "must be letters, digits, '_' and '-' only (1 to 64 characters)",
    "^[a-z0-9]+(-[a-z0-9]+)*$": "must be a region name such as 'cn-north-4'",
    "^[0-9]{1,3}%$": "must be a whole number, or a percentage such as '25%'",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?$":
        "must be a local date and time written YYYY-MM-DDTHH:MM (seconds optional), such as '2026-12-20T18:00', "
        "without an offset",
}


def explain(error: Any) -> list[tuple[tuple[PathPart, ...], str]]:
    """One jsonschema error as (path below the error's own path, plain-language message) pairs."""
    kw, inst, value = error.validator, error.instance, error.validator_value
    if kw == "required":
        missing = [key for key in value if isinstance(inst, dict) and key not in inst]
        return [((key,), f"missing required field {key!r}") for key in missing]
    if kw == "additionalProperties":
        known = list((error.schema.get("properties") or {}).keys())
        return [((key,), f"unknown field {short(key)}{_did_you_mean(key, known)}")
                for key in inst if key not in known]
    if kw in ("oneOf", "dependentRequired") and not isinstance(inst, dict):
        return []  # "must be a mapping" says it all
    if kw == "oneOf":
        if "window" in inst:
            return [((), "needs exactly one of action+cron or window, not both")]
        return [((), "needs exactly one of action+cron (a one-shot action) or window (a stop/start window)")]
    if kw == "dependentRequired":
        out = []
        for key, needs in value.items():
            if key in inst:
                out.extend(((dep,), f"missing {dep!r}: a one-shot schedule needs both action and cron")
                           for dep in needs if dep not in inst)
        return out
    prefix = f"key {short(inst)}: " if "propertyNames" in error.relative_schema_path else ""
    if kw == "type":
        expected = [value] if isinstance(value, str) else list(value)
        hint = ""
        if expected == ["string"] and (inst is None or isinstance(inst, (bool, int, float))):
            hint = "; in YAML, put quotes around a value meant as text (such as '20:00', 'no' or '1')"
        wanted = " or ".join(_TYPE_NAMES.get(e, e) for e in expected)
        if isinstance(error.schema, dict) and error.schema.get("pattern") in _PATTERN_MESSAGES and len(expected) > 1:
            wanted = _PATTERN_MESSAGES[error.schema["pattern"]].removeprefix("must be ")  # "a whole number, or ..."
        return [((), f"{prefix}must be {wanted} (got {describe(inst)}){hint}")]
    if kw == "enum":
        options = ", ".join(repr(v) for v in value)
        guess = _did_you_mean(inst, [str(v) for v in value]) if isinstance(inst, str) else ""
        return [((), f"must be one of {options} (got {short(inst)}){guess}")]
    if kw == "pattern":
        if value == _CRON_PATTERN and isinstance(inst, str):  # cronrules says exactly what is wrong
            message = cron_problem(inst)
            if message:
                return [((), message)]
        message = _PATTERN_MESSAGES.get(value, f"must match {value}")
        return [((), f"{prefix}{message} (got {short(inst)})")]
    if kw in ("minLength", "minItems"):
        return [((), f"{prefix}must not be empty")]
    if kw == "maxLength":
        return [((), f"{prefix}is too long (at most {value} characters)")]
    if kw == "maxItems":
        return [((), f"has too many items ({len(inst):,}; at most {value:,})")]
    if kw == "minProperties":
        if "ids" in (error.schema.get("properties") or {}):
            return [((), "must give at least one of 'ids', 'names' or 'tags'")]
        return [((), "must not be empty")]
    if kw == "maxProperties":
        return [((), f"has too many entries ({len(inst)}; at most {value})")]
    if kw == "minimum":
        return [((), f"must be at least {value} (got {short(inst)})")]
    if kw == "maximum":
        return [((), f"must be at most {value} (got {short(inst)})")]
    return [((), prefix + clip(error.message, 200))]


def _did_you_mean(word: Any, options: list[str]) -> str:
    if not isinstance(word, str) or len(word) > 100:
        return ""
    import difflib

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(value: Any) -> str:
    if value is None:
        return "null, an empty value"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"whole number {value}" if abs(value) < 10**30 else "a very large number"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"text {short(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__

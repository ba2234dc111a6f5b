"""Load and validate schedule files into `model.Schedule` values, with a `Problem` for everything wrong.

One tick reads every schedule file (SPEC section 2) through `load_catalog`; the HTTP validate route
checks a posted document through `parse_document`. Both go the same way:

1. bytes -> text: bounded size (`MAX_FILE_BYTES`), UTF-8 only;
2. text -> data: JSON with `json`, YAML with a strict safe loader (no aliases, no custom tags, no
   duplicate keys, bounded nesting; dates stay strings, mapping keys are strings);
3. data -> problems: `schedules/schema.json` (the same schema editors use), then what a schema cannot
   say: cron expressions (`cronrules.check_cron`), IANA zones, real dates, date order, flush needs
   `allow_flush: true`, `enforce` only on windows, the starting deadline's range;
4. valid items -> `Schedule`, with the file's `defaults` filled in (a schedule's own value wins).

A problem with the file as a whole (unreadable, not UTF-8, a YAML syntax error, not a mapping,
invalid `defaults`, an unknown top-level key) loads nothing from that file; an invalid schedule is
dropped and the others in its file still load. Names must be unique across all files: every
schedule that shares a name is dropped and each one's problem names the other place.

Parsing and validating a file is cached in-process by (path, mtime_ns, size, inode), so a warm
function does not re-read unchanged files on every tick; name uniqueness is recomputed each time.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Optional, Union

from dcs_maintenance.durations import parse_duration
from dcs_maintenance.model import Problem, Schedule, Selector, Window

MAX_FILE_BYTES = 4 * 1_048_576  # 10,000 schedules of about 400 bytes each
MAX_SCHEDULES_PER_FILE = 10_000  # the schema's maxItems
MAX_PROBLEMS_PER_FILE = 1000  # reported; the rest are summarised in one more problem
MAX_DEPTH = 32  # schedule files nest about 6 levels; more is a mistake or an attack
MAX_STARTING_DEADLINE = timedelta(hours=24)  # the ledger keeps claims 8 days; occurrences must be acted on well within
DEFAULT_STARTING_DEADLINE = timedelta(minutes=10)
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schedules" / "schema.json"
SCHEDULE_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULTS_KEYS = ("timezone", "project_id", "region", "starting_deadline")

_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DURATION_RE = re.compile(r"[0-9]+[smh]")
_IDENT_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
_CACHE_LIMIT = 1000

PathPart = Union[str, int]


# ---------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class Catalog:
    """Every valid schedule from a directory, the problems found, and the files read (as sources)."""

    schedules: tuple[Schedule, ...]
    problems: tuple[Problem, ...]
    files: tuple[str, ...]
    _by_name: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {s.name: s for s in self.schedules})

    def by_name(self, name: str) -> Optional[Schedule]:
        return self._by_name.get(name)

    def problems_for(self, name: str) -> tuple[Problem, ...]:
        """The problems reported for schedule `name` (which is then not in `schedules`)."""
        return tuple(p for p in self.problems if p.schedule == name)

    @property
    def ok(self) -> bool:
        return not self.problems


def load_catalog(directory: Union[str, Path]) -> Catalog:
    """Load `*.yaml`, `*.yml`, `*.json` in `directory` (not recursive; not `schema.json` or hidden files)."""
    directory = Path(directory)
    try:
        with os.scandir(directory) as it:
            names = sorted(
                e.name for e in it
                if e.name.lower().endswith(SCHEDULE_SUFFIXES) and not e.name.startswith(".")
                and e.name != "schema.json" and e.is_file()
            )
    except FileNotFoundError:
        return Catalog((), (Problem(str(directory), "the schedule directory does not exist"),), ())
    except NotADirectoryError:
        return Catalog((), (Problem(str(directory), "the schedule directory is not a directory"),), ())
    except OSError as exc:
        return Catalog((), (Problem(str(directory), f"cannot list the schedule directory: {_os_error(exc)}"),), ())
    prefix = directory.resolve().name  # sources read "schedules/nightly.yaml" wherever the directory is
    loaded = []
    for name in names:
        source = f"{prefix}/{name}" if prefix else name
        loaded.append((source, _load_file(directory / name, source)))
    # The same (cached) file results as last time: the same catalog, without recomputing name uniqueness.
    previous = _CATALOG_CACHE.get(str(directory))
    if previous is not None and len(previous[0]) == len(loaded) and all(
            s1 == s2 and r1 is r2 for (s1, r1), (s2, r2) in zip(previous[0], loaded, strict=True)):
        return previous[1]
    schedules, problems = _combine(loaded)
    catalog = Catalog(tuple(schedules), tuple(problems), tuple(source for source, _ in loaded))
    if len(_CATALOG_CACHE) >= _CACHE_LIMIT:
        _CATALOG_CACHE.clear()
    _CATALOG_CACHE[str(directory)] = (loaded, catalog)
    return catalog


def parse_document(data: Union[str, bytes], source: str,
                   fmt: Optional[str] = None) -> tuple[list[Schedule], list[Problem]]:
    """Validate one schedule document (YAML or JSON), as the HTTP validate route receives it.

    `fmt` is "yaml"/"yml" or "json"; by default JSON when `source` ends with `.json`, else YAML
    (which also reads JSON, with YAML's error messages). Names must be unique within the document.
    """
    if fmt is None:
        fmt = "json" if source.lower().endswith(".json") else "yaml"
    fmt = fmt.lower().lstrip(".")
    if fmt not in ("yaml", "yml", "json"):
        raise ValueError(f"unknown schedule document format {fmt!r}: use 'yaml' or 'json'")
    result = _load_document(data, source, fmt)
    schedules, problems = _combine([(source, result)])
    return schedules, problems


def schema() -> dict:
    """The schedule file JSON Schema (a copy of `schedules/schema.json`)."""
    return json.loads(json.dumps(_schema_doc()))


def clear_cache() -> None:
    """Forget cached file results (tests that rewrite a file within one mtime tick use this)."""
    _FILE_CACHE.clear()
    _CATALOG_CACHE.clear()


# ---------------------------------------------------------------------------------------------
# Files, caching, uniqueness


@dataclass(frozen=True)
class _FileResult:
    schedules: tuple[tuple[int, Schedule], ...] = ()
    problems: tuple[Problem, ...] = ()
    names: tuple[tuple[str, int], ...] = ()  # every item that has a well-formed name, valid or not


_FILE_CACHE: dict[tuple[str, str], tuple[tuple[int, int, int], _FileResult]] = {}
# directory -> (its (source, file result) pairs, the catalog made of them), reused while every result is the same
_CATALOG_CACHE: dict[str, tuple[list[tuple[str, _FileResult]], Catalog]] = {}


def _load_file(path: Path, source: str) -> _FileResult:
    try:
        st = os.stat(path)
    except OSError as exc:
        return _file_problem(source, f"cannot read the file: {_os_error(exc)}")
    cache_key = (os.path.abspath(path), source)
    version = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _FILE_CACHE.get(cache_key)
    if cached is not None and cached[0] == version:
        return cached[1]
    if st.st_size > MAX_FILE_BYTES:
        result = _file_problem(source, _too_large(st.st_size))
    else:
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            return _file_problem(source, f"cannot read the file: {_os_error(exc)}")
        result = _load_document(data, source, "json" if path.suffix.lower() == ".json" else "yaml")
    if len(_FILE_CACHE) >= _CACHE_LIMIT:
        _FILE_CACHE.clear()
    _FILE_CACHE[cache_key] = (version, result)
    return result


def _combine(loaded: list[tuple[str, _FileResult]]) -> tuple[list[Schedule], list[Problem]]:
    """Concatenate file results, dropping (and reporting) every schedule whose name is not unique."""
    places: dict[str, list[tuple[str, int]]] = {}
    for source, result in loaded:
        for name, index in result.names:
            places.setdefault(name, []).append((source, index))
    duplicates: dict[tuple[str, int], Problem] = {}
    for name, where in places.items():
        if len(where) < 2:
            continue
        for source, index in where:
            others = [(s, i) for s, i in where if (s, i) != (source, index)]
            text = ", ".join(f"{_path(('schedules', i))}" + ("" if s == source else f" in {s}")
                             for s, i in others)
            duplicates[(source, index)] = Problem(
                source, f"duplicate schedule name {name!r}: also defined at {text}; names must be unique "
                        "across all schedule files", _path(("schedules", index, "name")), name)
    schedules: list[Schedule] = []
    problems: list[Problem] = []
    for source, result in loaded:
        problems.extend(result.problems)
        for index, schedule in result.schedules:
            if (source, index) not in duplicates:
                schedules.append(schedule)
    problems.extend(duplicates.values())
    return schedules, problems


def _file_problem(source: str, message: str, path: str = "$") -> _FileResult:
    return _FileResult(problems=(Problem(source, message, path),))


def _too_large(size: int) -> str:
    return f"the file is too large ({size:,} bytes; at most {MAX_FILE_BYTES:,}): split it into several files"


def _os_error(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Bytes -> data


class _Rejected(Exception):
    """A document that parses but that schedule files do not allow (aliases, tags, duplicate keys...)."""


def _load_document(data: Union[str, bytes], source: str, fmt: str) -> _FileResult:
    if isinstance(data, str):
        size = len(data) if len(data) * 4 <= MAX_FILE_BYTES else len(data.encode("utf-8", "surrogatepass"))
        if size > MAX_FILE_BYTES:
            return _file_problem(source, _too_large(size))
        text = data[1:] if data.startswith("\ufeff") else data
        try:  # a lone surrogate (from a JSON "\ud800" escape, say) is no text: libyaml raised UnicodeEncodeError
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            line = text.count("\n", 0, exc.start) + 1
            return _file_problem(source, f"the document is not valid Unicode text (U+{ord(text[exc.start]):04X} at "
                                         f"line {line}, offset {exc.start}): save it as UTF-8")
    else:
        if len(data) > MAX_FILE_BYTES:
            return _file_problem(source, _too_large(len(data)))
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            return _file_problem(source, f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at line {line}, "
                                         f"offset {exc.start}): save it as UTF-8")
    try:
        doc = _parse_json(text) if fmt == "json" else _parse_yaml(text)
    except _Rejected as exc:
        return _file_problem(source, str(exc))
    except RecursionError:
        return _file_problem(source, "the document is nested too deeply")
    except ValueError as exc:  # int() past sys.get_int_max_str_digits() (4300), in json and in PyYAML alike
        return _file_problem(source, f"the document holds a value that cannot be read: {_clip(str(exc), 200)}")
    try:
        return _validate_document(doc, source)
    except Exception as exc:  # a bug here must not stop the other files (and every other schedule) loading
        return _file_problem(source, f"internal error while validating this file ({type(exc).__name__}: "
                                     f"{_clip(str(exc), 200)}); please report it")


def _parse_json(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict:
        result = dict(items)
        if len(result) != len(items):
            seen: set[str] = set()
            for key, _value in items:
                if key in seen:
                    raise _Rejected(f"JSON error: duplicate key {_short(key)} in an object")
                seen.add(key)
        return result

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise _Rejected(f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def _parse_yaml(text: str) -> Any:
    import yaml

    loader = None
    try:
        loader = _strict_loader_class()(text)  # the pure-Python reader checks characters here already
        return loader.get_single_data()
    except _Rejected:
        raise
    except yaml.MarkedYAMLError as exc:
        where = _mark(exc.problem_mark) if exc.problem_mark is not None else ""
        context = f" ({exc.context}{' ' + _mark(exc.context_mark) if exc.context_mark is not None else ''})" \
            if exc.context else ""
        raise _Rejected(f"YAML syntax error{' ' + where if where else ''}: {exc.problem}{context}") from None
    except yaml.reader.ReaderError as exc:  # control characters and the like
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        raise _Rejected(f"the file contains a character YAML does not allow (U+{char:04X}, "
                        f"at line {line}, column {column}): {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise _Rejected(f"YAML error: {_clip(str(exc), 300)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _mark(mark: Any) -> str:
    return f"at line {mark.line + 1}, column {mark.column + 1}"


@functools.cache
def _strict_loader_class() -> type:
    """A safe loader (libyaml's parser where available) with a composer that refuses what we do not want.

    libyaml's own composer recurses in C and crashes the process on deeply nested input, so the
    pure-Python composer runs on libyaml's events instead, with a depth limit.
    """
    import yaml
    from yaml.composer import Composer
    from yaml.events import AliasEvent
    from yaml.nodes import ScalarNode

    base = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    allowed_tags = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")}
    # Dates stay strings (the schema checks them as text); '<<' merge keys, '=' and the rest are plain text.
    dropped = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:merge", "tag:yaml.org,2002:value",
               "tag:yaml.org,2002:yaml"}
    str_tag = "tag:yaml.org,2002:str"

    class StrictLoader(base):  # type: ignore[misc, valid-type]
        yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag not in dropped]
            for first, resolvers in base.yaml_implicit_resolvers.items()
        }
        get_single_node = Composer.get_single_node
        compose_document = Composer.compose_document
        compose_scalar_node = Composer.compose_scalar_node
        compose_sequence_node = Composer.compose_sequence_node

        def __init__(self, stream: str) -> None:
            base.__init__(self, stream)
            self.anchors = {}
            self.depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(AliasEvent):
                event = self.get_event()
                raise _Rejected(f"YAML aliases are not allowed (*{event.anchor} {_mark(event.start_mark)}): "
                                "write the value out in full")
            event = self.peek_event()
            tag = getattr(event, "tag", None)
            if tag not in (None, "!") and tag not in allowed_tags:
                shown = tag.replace("tag:yaml.org,2002:", "!!")
                raise _Rejected(f"YAML tag {_short(shown)} is not allowed ({_mark(event.start_mark)}): "
                                "schedule files hold plain text, numbers, booleans, lists and mappings")
            if self.depth >= MAX_DEPTH:
                raise _Rejected(f"the document is nested too deeply (at most {MAX_DEPTH} levels, "
                                f"{_mark(event.start_mark)})")
            self.depth += 1
            try:
                return Composer.compose_node(self, parent, index)
            finally:
                self.depth -= 1

        def compose_mapping_node(self, anchor: Any) -> Any:
            node = Composer.compose_mapping_node(self, anchor)
            seen: dict[str, Any] = {}
            for key, _value in node.value:
                if not isinstance(key, ScalarNode):
                    raise _Rejected(f"mapping keys must be plain text ({_mark(key.start_mark)})")
                key.tag = str_tag  # `1: x`, `on: x` and `null: x` are keys "1", "on" and "null"
                if key.value in seen:
                    raise _Rejected(f"duplicate key {_short(key.value)} {_mark(key.start_mark)} "
                                    f"(first {_mark(seen[key.value])})")
                seen[key.value] = key.start_mark
            return node

    return StrictLoader


# ---------------------------------------------------------------------------------------------
# Data -> problems -> schedules


@functools.cache
def _schema_doc() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return json.load(fh)


@functools.cache
def _validator() -> Any:
    """Draft 2020-12, with `pattern` read as ECMA-262 does: `$` is the end of the text, not before a final newline."""
    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Any, value: str, instance: Any, _schema: dict) -> Iterable[Any]:
        if isinstance(instance, str) and _regex(value).search(instance) is None:
            yield ValidationError(f"{instance!r} does not match {value!r}")

    strict = validators.extend(Draft202012Validator, {"pattern": pattern})
    return strict(_schema_doc())


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + "\\Z"
    return re.compile(pattern)


def _schema_errors(doc: dict) -> Iterable[Any]:
    return _validator().iter_errors(doc)


def _validate_document(doc: Any, source: str) -> _FileResult:
    if not isinstance(doc, dict):
        got = "it is empty" if doc is None else f"got {_describe(doc)}"
        return _file_problem(source, f"a schedule file must be a mapping with a 'schedules' list ({got})")
    items = doc.get("schedules")
    items = items if isinstance(items, list) else []
    if len(items) > MAX_SCHEDULES_PER_FILE:  # do not spend time on each item of a hostile file
        return _file_problem(source, f"too many schedules ({len(items):,}; at most {MAX_SCHEDULES_PER_FILE:,} "
                                     "per file): split them into several files", "$.schedules")
    try:
        # The file without its schedules, then each schedule: the compiled check passes valid ones quickly,
        # jsonschema explains the others (with paths as if it had validated the whole file).
        top = {**doc, "schedules": []} if isinstance(doc.get("schedules"), list) else doc
        fast_file = _fast_file_check()
        file_level = [] if fast_file is not None and fast_file(top) else [
            (tuple(e.absolute_path) + sub, message) for e in _schema_errors(top) for sub, message in _explain(e)]
        fast = _fast_check()
        by_item: dict[int, list[tuple[tuple[PathPart, ...], str]]] = {}
        for index, item in enumerate(items):
            if fast is None or not fast(item):
                by_item[index] = [(("schedules", index) + tuple(e.absolute_path)[2:] + sub, message)
                                  for e in _schema_errors({"schedules": [item]}) for sub, message in _explain(e)]
    except RecursionError:
        return _file_problem(source, "the document is nested too deeply")

    defaults = doc.get("defaults") if isinstance(doc.get("defaults"), dict) else {}
    own = {key: defaults[key] for key in ("timezone", "starting_deadline") if key in defaults}
    file_level.extend(_unique(file_level, _check_values(own, ("defaults",))))
    problems: list[Problem] = []
    if file_level:
        note = "; no schedule in this file is loaded until this is fixed" if items else ""
        problems.extend(Problem(source, message + note, _path(parts)) for parts, message in _dedupe(file_level))

    schedules: list[tuple[int, Schedule]] = []
    names: list[tuple[str, int]] = []
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        name = name if isinstance(name, str) else None
        if name is not None and _NAME_RE.fullmatch(name):
            names.append((name, index))
        found = by_item.get(index, [])
        if isinstance(item, dict):
            found.extend(_unique(found, _check_values(item, ("schedules", index))))
        if found:
            found.sort(key=lambda entry: [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in entry[0]])
            shown = name if name is None or len(name) <= 80 else name[:77] + "..."
            problems.extend(Problem(source, message, _path(parts), shown) for parts, message in _dedupe(found))
        elif not file_level:
            schedules.append((index, _to_schedule(item, defaults, source)))
    if len(problems) > MAX_PROBLEMS_PER_FILE:
        hidden = len(problems) - MAX_PROBLEMS_PER_FILE
        problems[MAX_PROBLEMS_PER_FILE:] = [Problem(source, f"... and {hidden:,} more problems in this file")]
    return _FileResult(tuple(schedules), tuple(problems), tuple(names))


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
def _fast_check() -> Optional[Check]:
    """The check for one schedule (`$defs.schedule`), or None if the schema uses a keyword it does not know."""
    root = _schema_doc()
    try:
        return _compile(root["$defs"]["schedule"], root)
    except (_Unsupported, KeyError, TypeError):
        return None


@functools.cache
def _fast_file_check() -> Optional[Check]:
    """The check for a whole file; `_validate_document` gives it the file with an empty schedules list."""
    root = _schema_doc()
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


def _unique(found: list[tuple[tuple[PathPart, ...], str]],
            extra: Iterable[tuple[tuple[PathPart, ...], str]]) -> list[tuple[tuple[PathPart, ...], str]]:
    """Checks beyond the schema, except on paths the schema already reported (one message per field)."""
    reported = {parts for parts, _ in found}
    return [(parts, message) for parts, message in extra if parts not in reported]


def _dedupe(found: list[tuple[tuple[PathPart, ...], str]]) -> list[tuple[tuple[PathPart, ...], str]]:
    return list(dict.fromkeys(found))


def _check_values(item: dict, base: tuple[PathPart, ...]) -> Iterable[tuple[tuple[PathPart, ...], str]]:
    """What the schema cannot check, on values of the right type (wrong types are the schema's to report)."""
    cron = item.get("cron")
    if isinstance(cron, str):
        message = _cron_problem(cron)
        if message:
            yield base + ("cron",), message
    window = item.get("window")
    if isinstance(window, dict):
        for key in ("stop", "start"):
            expr = window.get(key)
            message = _cron_problem(expr) if isinstance(expr, str) else None
            if message:
                yield base + ("window", key), message
        stop, start = window.get("stop"), window.get("start")
        if isinstance(stop, str) and isinstance(start, str) and stop.split() == start.split():
            yield base + ("window", "start"), "start and stop are the same expression: the window would never be open"
    zone = item.get("timezone")
    if isinstance(zone, str):
        message = _zone_problem(zone)
        if message:
            yield base + ("timezone",), message
    if item.get("action") == "flush" and item.get("allow_flush") is not True:
        yield base + ("allow_flush",), ("action 'flush' deletes all data in the selected instances: "
                                        "set allow_flush: true to confirm")
    if item.get("enforce") is True and "window" not in item:
        yield base + ("enforce",), "enforce applies only to window schedules (this one has no window)"
    skip = item.get("skip_dates")
    if isinstance(skip, list):
        for k, value in enumerate(skip):
            message = _date_problem(value)
            if message:
                yield base + ("skip_dates", k), message
    first, last = item.get("active_from"), item.get("active_until")
    for key, value in (("active_from", first), ("active_until", last)):
        message = _date_problem(value)
        if message:
            yield base + (key,), message
    if _date_problem(first) is None and _date_problem(last) is None and isinstance(first, str) \
            and isinstance(last, str) and first > last:
        yield base + ("active_until",), f"active_until ({last}) is before active_from ({first})"
    deadline = item.get("starting_deadline")
    if isinstance(deadline, str) and _DURATION_RE.fullmatch(deadline):
        message = _deadline_problem(deadline)
        if message:
            yield base + ("starting_deadline",), message


@functools.lru_cache(maxsize=4096)
def _cron_problem(expr: str) -> Optional[str]:
    from dcs_maintenance.cronrules import CronError, check_cron

    try:
        check_cron(expr)
    except CronError as exc:
        return str(exc)
    except ValueError as exc:  # croniter's own errors are ValueErrors too
        return f"invalid cron expression {_short(expr)}: {exc}"
    return None


@functools.lru_cache(maxsize=1024)
def _zone_problem(name: str) -> Optional[str]:
    from zoneinfo import ZoneInfo

    hint = ("use an IANA time zone name such as 'Asia/Shanghai', 'Europe/Berlin' or 'UTC' "
            "(fixed offsets such as '+08:00' or 'UTC+8' do not follow daylight saving time)")
    if name == "localtime" or name.startswith(("posix/", "right/")):
        return f"time zone {_short(name)} is not allowed: {hint}"
    try:
        ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError for odd keys, OSError for directories
        return f"unknown time zone {_short(name)}: {hint}"
    return None


def _date_problem(value: Any) -> Optional[str]:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        return None  # absent, or the schema's to report
    try:
        date.fromisoformat(value)
    except ValueError:
        return f"{value} is not a calendar date"
    return None


def _deadline_problem(text: str) -> Optional[str]:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        return str(exc)
    if value <= timedelta(0):
        return "must be more than 0s: with no time to start, every occurrence would be missed"
    if value > MAX_STARTING_DEADLINE:
        return f"must be at most 24h (got {text})"
    return None


def _to_schedule(item: dict, defaults: dict, source: str) -> Schedule:
    """A schedule that passed every check; the file's defaults fill in what it does not set."""
    merged = {**defaults, **item} if defaults else item
    window = item.get("window")
    deadline = merged.get("starting_deadline")
    skip = item.get("skip_dates")
    return Schedule(
        name=item["name"],
        source=source,
        instances=_selector(item["instances"]),
        action=item.get("action"),
        cron=item.get("cron"),
        window=Window(stop=window["stop"], start=window["start"]) if window is not None else None,
        description=item.get("description", ""),
        enabled=item.get("enabled", True),
        timezone=merged.get("timezone") or "UTC",
        enforce=item.get("enforce", False),
        exclude=_selector(item["exclude"]) if "exclude" in item else _NO_SELECTOR,
        skip_dates=frozenset(map(date.fromisoformat, skip)) if skip else frozenset(),
        active_from=date.fromisoformat(item["active_from"]) if "active_from" in item else None,
        active_until=date.fromisoformat(item["active_until"]) if "active_until" in item else None,
        starting_deadline=_duration(deadline) if deadline is not None else DEFAULT_STARTING_DEADLINE,
        allow_flush=item.get("allow_flush", False),
        max_instances=int(item.get("max_instances", 50)),
        project_id=merged.get("project_id"),
        region=merged.get("region"),
        dry_run=item.get("dry_run", False),
    )


_NO_SELECTOR = Selector()
_duration = functools.lru_cache(maxsize=256)(parse_duration)


def _selector(data: dict) -> Selector:
    ids, names, tags = data.get("ids"), data.get("names"), data.get("tags")
    return Selector(
        ids=tuple(dict.fromkeys(ids)) if ids else (),
        names=tuple(dict.fromkeys(names)) if names else (),
        tags=tuple(sorted(tags.items())) if tags else (),
    )


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
}


def _explain(error: Any) -> list[tuple[tuple[PathPart, ...], str]]:
    """One jsonschema error as (path below the error's own path, plain-language message) pairs."""
    kw, inst, value = error.validator, error.instance, error.validator_value
    if kw == "required":
        missing = [key for key in value if isinstance(inst, dict) and key not in inst]
        return [((key,), f"missing required field {key!r}") for key in missing]
    if kw == "additionalProperties":
        known = list((error.schema.get("properties") or {}).keys())
        return [((key,), f"unknown field {_short(key)}{_did_you_mean(key, known)}")
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
    prefix = f"key {_short(inst)}: " if "propertyNames" in error.relative_schema_path else ""
    if kw == "type":
        expected = value if isinstance(value, str) else value[0]
        hint = ""
        if expected == "string" and (inst is None or isinstance(inst, (bool, int, float))):
            hint = "; in YAML, put quotes around a value meant as text (such as '20:00', 'no' or '1')"
        return [((), f"{prefix}must be {_TYPE_NAMES.get(expected, expected)} (got {_describe(inst)}){hint}")]
    if kw == "enum":
        options = ", ".join(repr(v) for v in value)
        guess = _did_you_mean(inst, [str(v) for v in value]) if isinstance(inst, str) else ""
        return [((), f"must be one of {options} (got {_short(inst)}){guess}")]
    if kw == "pattern":
        if value == _CRON_PATTERN and isinstance(inst, str):  # cronrules says exactly what is wrong
            message = _cron_problem(inst)
            if message:
                return [((), message)]
        message = _PATTERN_MESSAGES.get(value, f"must match {value}")
        return [((), f"{prefix}{message} (got {_short(inst)})")]
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
        return [((), f"must be at least {value} (got {_short(inst)})")]
    if kw == "maximum":
        return [((), f"must be at most {value} (got {_short(inst)})")]
    return [((), prefix + _clip(error.message, 200))]


def _did_you_mean(word: Any, options: list[str]) -> str:
    if not isinstance(word, str) or len(word) > 100:
        return ""
    import difflib

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(value: Any) -> str:
    if value is None:
        return "null, an empty value"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"whole number {value}" if abs(value) < 10**30 else "a very large number"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"text {_short(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return "a very large number"
    return _clip(repr(value), limit)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path(parts: Iterable[PathPart]) -> str:
    """`$.schedules[2].window.stop`; keys that are not identifiers as `['app.kubernetes.io/name']`."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENT_RE.fullmatch(part) and len(part) <= 64:
            out.append(f".{part}")
        else:
            out.append("[" + _clip(repr(part), 70) + "]")
    return "".join(out)


__all__ = ["Catalog", "load_catalog", "parse_document", "schema", "clear_cache", "MAX_FILE_BYTES", "SCHEMA_PATH"]

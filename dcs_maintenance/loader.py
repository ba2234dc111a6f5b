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

The top-level `freezes` list (in any file) goes the same way, item by item (`$.freezes[i].field`):
a bad freeze, or a `freezes` that is not a list, is a problem that never stops the file's schedules
or its other freezes. Freeze names are unique across files among freezes (a separate namespace).

Parsing and validating a file is cached in-process by (path, mtime_ns, size, inode), so a warm
function does not re-read unchanged files on every tick; name uniqueness is recomputed each time.

Steps 1 and 2 are `documents`, the schema in step 3 is `schema_check`, the rest of step 3 and step 4
are `schedule_checks`; this module reads the files, caches, ties the steps together and checks names.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from dcs_maintenance.documents import MAX_DEPTH as MAX_DEPTH
from dcs_maintenance.documents import MAX_FILE_BYTES, Rejected, clip, read_document, strict_loader_class, too_large
from dcs_maintenance.model import Freeze, Problem, Schedule
from dcs_maintenance.schedule_checks import DEFAULT_STARTING_DEADLINE as DEFAULT_STARTING_DEADLINE
from dcs_maintenance.schedule_checks import MAX_STARTING_DEADLINE as MAX_STARTING_DEADLINE
from dcs_maintenance.schedule_checks import (
    NO_CONTEXT,
    PathPart,
    ValidationContext,
    check_freeze,
    check_values,
    context_problems,
    context_warnings,
    to_freeze,
    to_schedule,
)
from dcs_maintenance.schema_check import (
    SCHEMA_PATH,
    describe,
    explain,
    fast_check,
    fast_file_check,
    fast_freeze_check,
    jsonschema_validator,
    schema_doc,
    schema_errors,
)

MAX_SCHEDULES_PER_FILE = 10_000  # the schema's maxItems
MAX_FREEZES_PER_FILE = 1000  # the schema's maxItems for freezes
MAX_PROBLEMS_PER_FILE = 1000  # reported; the rest are summarised in one more problem
SCHEDULE_SUFFIXES = (".yaml", ".yml", ".json")

_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_IDENT_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
_CACHE_LIMIT = 1000

# Former internals of this module, still reached through it by tests (clearing caches, comparing the checks).
_strict_loader_class = strict_loader_class
_fast_check, _fast_file_check, _validator = fast_check, fast_file_check, jsonschema_validator


# ---------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class Catalog:
    """Every valid schedule and freeze from a directory, the problems found, and the files read (as sources).

    `warnings` concern valid schedules (they still run), such as a starting_deadline shorter than the tick.
    """

    schedules: tuple[Schedule, ...]
    problems: tuple[Problem, ...]
    files: tuple[str, ...]
    warnings: tuple[Problem, ...] = ()
    freezes: tuple[Freeze, ...] = ()
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


def load_catalog(directory: Union[str, Path], context: ValidationContext = NO_CONTEXT) -> Catalog:
    """Load `*.yaml`, `*.yml`, `*.json` in `directory` (not recursive; not `schema.json` or hidden files).

    `context` (Settings.validation_context()) adds the checks that depend on the function: its region, its
    tick period.
    """
    directory = Path(directory)
    loaded = _folder(directory, context)
    if isinstance(loaded, Problem):
        return Catalog((), (loaded,), ())
    # The same (cached) file results as last time: the same catalog, without recomputing name uniqueness.
    previous = _CATALOG_CACHE.get((str(directory), context))
    if previous is not None and len(previous[0]) == len(loaded) and all(
            s1 == s2 and r1 is r2 for (s1, r1), (s2, r2) in zip(previous[0], loaded, strict=True)):
        return previous[1]
    schedules, problems, freezes = _combine(loaded)
    catalog = Catalog(tuple(schedules), tuple(problems), tuple(source for source, _ in loaded),
                      warnings=_kept_warnings(loaded, schedules), freezes=tuple(freezes))
    if len(_CATALOG_CACHE) >= _CACHE_LIMIT:
        _CATALOG_CACHE.clear()
    _CATALOG_CACHE[(str(directory), context)] = (loaded, catalog)
    return catalog


def load_paths(paths: Iterable[Union[str, Path]], context: ValidationContext = NO_CONTEXT) -> Catalog:
    """Load schedule files and folders given by name (`validate PATH ...`), as one catalog: names must be unique
    across all of them, as if they were one folder. A folder is read as `load_catalog` reads it; a file named
    explicitly is read whatever its suffix (JSON for `.json`, else YAML) and wherever a link leads, but it must
    be a regular file. Each file is read once, however often it is named. Missing paths are problems."""
    loaded: list[tuple[str, _FileResult]] = []
    folder_problems: list[Problem] = []
    seen: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = _folder(path, context)
            if isinstance(found, Problem):
                folder_problems.append(found)
                continue
            entries = [(source, result, os.path.realpath(path / source.rsplit("/", 1)[-1]))
                       for source, result in found]
        else:
            source = str(raw)
            refused = _not_a_schedule_file(path, None)
            result = _file_problem(source, refused) if refused else _load_file(path, source, context)
            entries = [(source, result, os.path.realpath(path))]
        for source, result, real in entries:
            if real not in seen:
                seen.add(real)
                loaded.append((source, result))
    schedules, problems, freezes = _combine(loaded)
    return Catalog(tuple(schedules), tuple(folder_problems + problems), tuple(source for source, _ in loaded),
                   warnings=_kept_warnings(loaded, schedules), freezes=tuple(freezes))


def schedule_files(directory: Union[str, Path]) -> list[Path]:
    """The files `load_catalog(directory)` reads (regular files, or links to them inside the folder), for the
    package builder: what is shipped is exactly what is loaded."""
    directory = Path(directory)
    found = _folder(directory)
    if isinstance(found, Problem):
        return []
    root = directory.resolve()
    names = [source.rsplit("/", 1)[-1] for source, _ in found]
    return [directory / name for name in names if _not_a_schedule_file(directory / name, root) is None]


def _folder(directory: Path, context: ValidationContext = NO_CONTEXT
            ) -> Union[list[tuple[str, _FileResult]], Problem]:
    """Every entry of `directory` named like a schedule file, loaded or with the reason it cannot be."""
    try:
        with os.scandir(directory) as it:  # every kind of entry: what is not a regular file is reported
            names = sorted(
                e.name for e in it
                if e.name.lower().endswith(SCHEDULE_SUFFIXES) and not e.name.startswith(".")
                and e.name != "schema.json"
            )
    except FileNotFoundError:
        return Problem(str(directory), "the schedule directory does not exist")
    except NotADirectoryError:
        return Problem(str(directory), "the schedule directory is not a directory")
    except OSError as exc:
        return Problem(str(directory), f"cannot list the schedule directory: {_os_error(exc)}")
    root = directory.resolve()
    prefix = root.name  # sources read "schedules/nightly.yaml" wherever the directory is
    loaded = []
    for name in names:
        source = f"{prefix}/{name}" if prefix else name
        refused = _not_a_schedule_file(directory / name, root)
        loaded.append((source, _file_problem(source, refused) if refused
                       else _load_file(directory / name, source, context)))
    return loaded


def parse_document(data: Union[str, bytes], source: str, fmt: Optional[str] = None,
                   context: ValidationContext = NO_CONTEXT) -> tuple[list[Schedule], list[Problem]]:
    """Validate one schedule document (YAML or JSON), as the HTTP validate route receives it.

    `fmt` is "yaml"/"yml" or "json"; by default JSON when `source` ends with `.json`, else YAML
    (which also reads JSON, with YAML's error messages). Names must be unique within the document.
    """
    catalog = parse_catalog(data, source, fmt, context)
    return list(catalog.schedules), list(catalog.problems)


def check_document(data: Union[str, bytes], source: str, fmt: Optional[str] = None,
                   context: ValidationContext = NO_CONTEXT) -> tuple[list[Schedule], list[Problem], list[Problem]]:
    """`parse_document`, and the warnings about the valid schedules (see `Catalog.warnings`)."""
    catalog = parse_catalog(data, source, fmt, context)
    return list(catalog.schedules), list(catalog.problems), list(catalog.warnings)


def parse_catalog(data: Union[str, bytes], source: str, fmt: Optional[str] = None,
                  context: ValidationContext = NO_CONTEXT) -> Catalog:
    """`parse_document` with the document's freezes and warnings too: a Catalog of one document."""
    if fmt is None:
        fmt = "json" if source.lower().endswith(".json") else "yaml"
    fmt = fmt.lower().lstrip(".")
    if fmt not in ("yaml", "yml", "json"):
        raise ValueError(f"unknown schedule document format {fmt!r}: use 'yaml' or 'json'")
    result = _load_document(data, source, fmt, context)
    schedules, problems, freezes = _combine([(source, result)])
    return Catalog(tuple(schedules), tuple(problems), (source,),
                   warnings=_kept_warnings([(source, result)], schedules), freezes=tuple(freezes))


def schema() -> dict:
    """The schedule file JSON Schema (a copy of `schedules/schema.json`)."""
    return json.loads(json.dumps(schema_doc()))


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
    warnings: tuple[Problem, ...] = ()  # about valid schedules
    freezes: tuple[tuple[int, Freeze], ...] = ()
    freeze_names: tuple[tuple[str, int], ...] = ()


_FILE_CACHE: dict[tuple[str, str, ValidationContext], tuple[tuple[int, int, int], _FileResult]] = {}
# (directory, context) -> (its (source, file result) pairs, the catalog made of them), reused while every result
# is the same
_CATALOG_CACHE: dict[tuple[str, ValidationContext], tuple[list[tuple[str, _FileResult]], Catalog]] = {}


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def _not_a_schedule_file(path: Path, root: Optional[Path]) -> Optional[str]:
    """Why an entry named like a schedule file cannot be one, or None for a regular file inside the folder.

    Reported rather than skipped: a file that silently stops loading takes its schedules with it. A symbolic
    link must lead to a file inside the folder `root`: anything else could make the function read (and quote in
    its problems) a file it was never meant to, so neither the target's path nor its content is ever shown.
    `root` None: a file named explicitly (`validate FILE`), whose links may lead anywhere.
    """
    try:
        link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError as exc:
        return f"cannot read the file: {_os_error(exc)}"
    if link:
        target = Path(os.path.realpath(path))
        if not target.exists():
            return "a symbolic link whose target does not exist: fix or remove the link"
        if root is not None and not target.is_relative_to(root):
            return ("a symbolic link that leads outside the schedules folder: refused (its target is not read); "
                    "keep schedule files inside the folder")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot read the file: {_os_error(exc)}"
    if not stat.S_ISREG(mode):
        return f"named like a schedule file but {_kind(mode)}, not a regular file: nothing in it is loaded"
    return None


def _read_regular(path: Path) -> bytes:
    """The file's first MAX_FILE_BYTES + 1 bytes. Opened non-blocking and checked again once open: an entry
    swapped for a FIFO after it was checked must not hang the tick."""
    with open(path, "rb", opener=lambda name, flags: os.open(name, flags | getattr(os, "O_NONBLOCK", 0))) as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(0, f"{_kind(mode)}, not a regular file")
        return fh.read(MAX_FILE_BYTES + 1)


def _load_file(path: Path, source: str, context: ValidationContext = NO_CONTEXT) -> _FileResult:
    try:
        st = os.stat(path)
    except OSError as exc:
        return _file_problem(source, f"cannot read the file: {_os_error(exc)}")
    cache_key = (os.path.abspath(path), source, context)
    version = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _FILE_CACHE.get(cache_key)
    if cached is not None and cached[0] == version:
        return cached[1]
    if st.st_size > MAX_FILE_BYTES:
        result = _file_problem(source, too_large(st.st_size))
    else:
        try:
            data = _read_regular(path)
        except OSError as exc:
            return _file_problem(source, f"cannot read the file: {_os_error(exc)}")
        result = _load_document(data, source, "json" if path.suffix.lower() == ".json" else "yaml", context)
    if len(_FILE_CACHE) >= _CACHE_LIMIT:
        _FILE_CACHE.clear()
    _FILE_CACHE[cache_key] = (version, result)
    return result


def _combine(loaded: list[tuple[str, _FileResult]]) -> tuple[list[Schedule], list[Problem], list[Freeze]]:
    """Concatenate file results, dropping (and reporting) every schedule, and every freeze, whose name is not
    unique among its kind."""
    schedule_dups = _duplicates(loaded, "schedules", lambda r: r.names)
    freeze_dups = _duplicates(loaded, "freezes", lambda r: r.freeze_names)
    schedules: list[Schedule] = []
    freezes: list[Freeze] = []
    problems: list[Problem] = []
    for source, result in loaded:
        problems.extend(result.problems)
        schedules.extend(schedule for index, schedule in result.schedules if (source, index) not in schedule_dups)
        freezes.extend(freeze for index, freeze in result.freezes if (source, index) not in freeze_dups)
    problems.extend(schedule_dups.values())
    problems.extend(freeze_dups.values())
    return schedules, problems, freezes


def _duplicates(loaded: list[tuple[str, _FileResult]], kind: str,
                names: Any) -> dict[tuple[str, int], Problem]:
    """(source, index) -> the problem, for every item of `kind` ("schedules"/"freezes") sharing a name."""
    places: dict[str, list[tuple[str, int]]] = {}
    for source, result in loaded:
        for name, index in names(result):
            places.setdefault(name, []).append((source, index))
    duplicates: dict[tuple[str, int], Problem] = {}
    what = "schedule" if kind == "schedules" else "freeze"
    for name, where in places.items():
        if len(where) < 2:
            continue
        for source, index in where:
            others = [(s, i) for s, i in where if (s, i) != (source, index)]
            text = ", ".join(f"{_path((kind, i))}" + ("" if s == source else f" in {s}") for s, i in others)
            duplicates[(source, index)] = Problem(
                source, f"duplicate {what} name {name!r}: also defined at {text}; names must be unique "
                        f"across all schedule files", _path((kind, index, "name")),
                name if kind == "schedules" else None)
    return duplicates


def _kept_warnings(loaded: list[tuple[str, _FileResult]], kept: list[Schedule]) -> tuple[Problem, ...]:
    """The warnings about schedules that made it into the catalog (not those dropped as duplicates)."""
    names = {(s.source, s.name) for s in kept}
    return tuple(w for source, result in loaded for w in result.warnings if (source, w.schedule) in names)


def _file_problem(source: str, message: str, path: str = "$") -> _FileResult:
    return _FileResult(problems=(Problem(source, message, path),))


def _os_error(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Data -> problems -> schedules


def _load_document(data: Union[str, bytes], source: str, fmt: str,
                   context: ValidationContext = NO_CONTEXT) -> _FileResult:
    try:
        doc = read_document(data, fmt)
    except Rejected as exc:
        return _file_problem(source, str(exc))
    try:
        return _validate_document(doc, source, context)
    except Exception as exc:  # a bug here must not stop the other files (and every other schedule) loading
        return _file_problem(source, f"internal error while validating this file ({type(exc).__name__}: "
                                     f"{clip(str(exc), 200)}); please report it")


def _validate_document(doc: Any, source: str, context: ValidationContext = NO_CONTEXT) -> _FileResult:
    if not isinstance(doc, dict):
        got = "it is empty" if doc is None else f"got {describe(doc)}"
        return _file_problem(source, f"a schedule file must be a mapping with a 'schedules' list ({got})")
    items = doc.get("schedules")
    items = items if isinstance(items, list) else []
    if len(items) > MAX_SCHEDULES_PER_FILE:  # do not spend time on each item of a hostile file
        return _file_problem(source, f"too many schedules ({len(items):,}; at most {MAX_SCHEDULES_PER_FILE:,} "
                                     "per file): split them into several files", "$.schedules")
    try:
        # The file without its schedules (and freezes), then each schedule: the compiled check passes valid ones
        # quickly, jsonschema explains the others (with paths as if it had validated the whole file).
        top = {key: value for key, value in doc.items() if key != "freezes"}
        if isinstance(top.get("schedules"), list):
            top["schedules"] = []
        fast_file = fast_file_check()
        file_level = [] if fast_file is not None and fast_file(top) else [
            (tuple(e.absolute_path) + sub, message) for e in schema_errors(top) for sub, message in explain(e)]
        fast = fast_check()
        by_item: dict[int, list[tuple[tuple[PathPart, ...], str]]] = {}
        for index, item in enumerate(items):
            if fast is None or not fast(item):
                by_item[index] = [(("schedules", index) + tuple(e.absolute_path)[2:] + sub, message)
                                  for e in schema_errors({"schedules": [item]}) for sub, message in explain(e)]
    except RecursionError:
        return _file_problem(source, "the document is nested too deeply")

    defaults = doc.get("defaults") if isinstance(doc.get("defaults"), dict) else {}
    own = {key: defaults[key] for key in ("timezone", "starting_deadline") if key in defaults}
    file_level.extend(_unique(file_level, check_values(own, ("defaults",))))
    problems: list[Problem] = []
    if file_level:
        note = ("; no schedule or freeze in this file is loaded until this is fixed" if doc.get("freezes") else
                "; no schedule in this file is loaded until this is fixed" if items else "")
        problems.extend(Problem(source, message + note, _path(parts)) for parts, message in _dedupe(file_level))

    schedules: list[tuple[int, Schedule]] = []
    names: list[tuple[str, int]] = []
    warnings: list[Problem] = []
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        name = name if isinstance(name, str) else None
        if name is not None and _NAME_RE.fullmatch(name):
            names.append((name, index))
        found = by_item.get(index, [])
        if isinstance(item, dict):
            found.extend(_unique(found, check_values(item, ("schedules", index))))
            found.extend(_unique(found, context_problems(item, defaults, ("schedules", index), context)))
        if found:
            found.sort(key=lambda entry: [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in entry[0]])
            shown = name if name is None or len(name) <= 80 else name[:77] + "..."
            problems.extend(Problem(source, message, _path(parts), shown) for parts, message in _dedupe(found))
        elif not file_level:
            schedules.append((index, to_schedule(item, defaults, source)))
            warnings.extend(Problem(source, message, _path(parts), name)
                            for parts, message in context_warnings(item, defaults, ("schedules", index), context))
    zone = defaults.get("timezone") if isinstance(defaults.get("timezone"), str) else None
    freezes, freeze_names = _validate_freezes(doc, source, zone or "UTC", not file_level, problems)
    if len(problems) > MAX_PROBLEMS_PER_FILE:
        hidden = len(problems) - MAX_PROBLEMS_PER_FILE
        problems[MAX_PROBLEMS_PER_FILE:] = [Problem(source, f"... and {hidden:,} more problems in this file")]
    return _FileResult(tuple(schedules), tuple(problems), tuple(names), tuple(warnings), tuple(freezes),
                       tuple(freeze_names))


def _validate_freezes(doc: dict, source: str, default_zone: str, load: bool,
                      problems: list[Problem]) -> tuple[list[tuple[int, Freeze]], list[tuple[str, int]]]:
    """The file's `freezes`, item by item: problems appended, valid ones returned (when `load`) with names."""
    if "freezes" not in doc:
        return [], []
    items = doc["freezes"]
    if not isinstance(items, list):
        problems.append(Problem(source, f"must be a list of freezes (got {describe(items)})", "$.freezes"))
        return [], []
    if len(items) > MAX_FREEZES_PER_FILE:
        problems.append(Problem(source, f"too many freezes ({len(items):,}; at most {MAX_FREEZES_PER_FILE:,} per "
                                        "file)", "$.freezes"))
        return [], []
    fast = fast_freeze_check()
    freezes: list[tuple[int, Freeze]] = []
    names: list[tuple[str, int]] = []
    for index, item in enumerate(items):
        found: list[tuple[tuple[PathPart, ...], str]] = []
        try:
            if fast is None or not fast(item):
                found = [(("freezes", index) + tuple(e.absolute_path)[2:] + sub, message)
                         for e in schema_errors({"schedules": [], "freezes": [item]}) for sub, message in explain(e)]
        except RecursionError:
            found = [(("freezes", index), "nested too deeply")]
        if isinstance(item, dict):
            found.extend(_unique(found, check_freeze(item, ("freezes", index), default_zone)))
            name = item.get("name")
            if isinstance(name, str) and _NAME_RE.fullmatch(name):
                names.append((name, index))
        if found:
            found.sort(key=lambda entry: [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in entry[0]])
            problems.extend(Problem(source, message, _path(parts)) for parts, message in _dedupe(found))
        elif load:
            freezes.append((index, to_freeze(item, default_zone, source)))
    return freezes, names


def _unique(found: list[tuple[tuple[PathPart, ...], str]],
            extra: Iterable[tuple[tuple[PathPart, ...], str]]) -> list[tuple[tuple[PathPart, ...], str]]:
    """Checks beyond the schema, except on paths the schema already reported (one message per field)."""
    reported = {parts for parts, _ in found}
    return [(parts, message) for parts, message in extra if parts not in reported]


def _dedupe(found: list[tuple[tuple[PathPart, ...], str]]) -> list[tuple[tuple[PathPart, ...], str]]:
    return list(dict.fromkeys(found))


def _path(parts: Iterable[PathPart]) -> str:
    """`$.schedules[2].window.stop`; keys that are not identifiers as `['app.kubernetes.io/name']`."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENT_RE.fullmatch(part) and len(part) <= 64:
            out.append(f".{part}")
        else:
            out.append("[" + clip(repr(part), 70) + "]")
    return "".join(out)


__all__ = ["Catalog", "load_catalog", "load_paths", "parse_document", "check_document", "parse_catalog", "schema",
           "clear_cache", "MAX_FILE_BYTES", "SCHEMA_PATH", "MAX_FREEZES_PER_FILE", "ValidationContext"]

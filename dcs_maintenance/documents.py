"""A schedule document's bytes or text -> Python data, or `Rejected` with what schedule files do not allow.

Bounded size (`MAX_FILE_BYTES`), UTF-8 only; JSON with `json` (no duplicate keys), YAML with a strict
safe loader (no aliases, no custom tags, no duplicate keys, nesting bounded by `MAX_DEPTH`; dates stay
strings, mapping keys are strings). `yaml` is imported on first use, not with this module.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Union

MAX_FILE_BYTES = 4 * 1_048_576  # 10,000 schedules of about 400 bytes each
MAX_DEPTH = 32  # schedule files nest about 6 levels; more is a mistake or an attack


class Rejected(Exception):
    """A document that schedule files do not allow (too large, not UTF-8, a syntax error, aliases, tags,
    duplicate keys...): the message says what, and where."""


def read_document(data: Union[str, bytes], fmt: str) -> Any:
    """The data in a JSON (`fmt` "json") or YAML (any other `fmt`) document; `Rejected` if it cannot be read."""
    if isinstance(data, str):
        size = len(data) if len(data) * 4 <= MAX_FILE_BYTES else len(data.encode("utf-8", "surrogatepass"))
        if size > MAX_FILE_BYTES:
            raise Rejected(too_large(size))
        text = data[1:] if data.startswith("\ufeff") else data
        try:  # a lone surrogate (from a JSON "\ud800" escape, say) is no text: libyaml raised UnicodeEncodeError
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            line = text.count("\n", 0, exc.start) + 1
            raise Rejected(f"the document is not valid Unicode text (U+{ord(text[exc.start]):04X} at "
                           f"line {line}, offset {exc.start}): save it as UTF-8") from None
    else:
        if len(data) > MAX_FILE_BYTES:
            raise Rejected(too_large(len(data)))
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise Rejected(f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at line {line}, "
                           f"offset {exc.start}): save it as UTF-8") from None
    try:
        return _parse_json(text) if fmt == "json" else _parse_yaml(text)
    except RecursionError:
        raise Rejected("the document is nested too deeply") from None
    except ValueError as exc:  # int() past sys.get_int_max_str_digits() (4300), in json and in PyYAML alike
        raise Rejected(f"the document holds a value that cannot be read: {clip(str(exc), 200)}") from None


def too_large(size: int) -> str:
    return f"the file is too large ({size:,} bytes; at most {MAX_FILE_BYTES:,}): split it into several files"


def _parse_json(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict:
        result = dict(items)
        if len(result) != len(items):
            seen: set[str] = set()
            for key, _value in items:
                if key in seen:
                    raise Rejected(f"JSON error: duplicate key {short(key)} in an object")
                seen.add(key)
        return result

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise Rejected(f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def _parse_yaml(text: str) -> Any:
    import yaml

    loader = None
    try:
        loader = strict_loader_class()(text)  # the pure-Python reader checks characters here already
        return loader.get_single_data()
    except Rejected:
        raise
    except yaml.MarkedYAMLError as exc:
        where = _mark(exc.problem_mark) if exc.problem_mark is not None else ""
        context = f" ({exc.context}{' ' + _mark(exc.context_mark) if exc.context_mark is not None else ''})" \
            if exc.context else ""
        raise Rejected(f"YAML syntax error{' ' + where if where else ''}: {exc.problem}{context}") from None
    except yaml.reader.ReaderError as exc:  # control characters and the like
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        raise Rejected(f"the file contains a character YAML does not allow (U+{char:04X}, "
                        f"at line {line}, column {column}): {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise Rejected(f"YAML error: {clip(str(exc), 300)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _mark(mark: Any) -> str:
    return f"at line {mark.line + 1}, column {mark.column + 1}"


@functools.cache
def strict_loader_class() -> type:
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
                raise Rejected(f"YAML aliases are not allowed (*{event.anchor} {_mark(event.start_mark)}): "
                                "write the value out in full")
            event = self.peek_event()
            tag = getattr(event, "tag", None)
            if tag not in (None, "!") and tag not in allowed_tags:
                shown = tag.replace("tag:yaml.org,2002:", "!!")
                raise Rejected(f"YAML tag {short(shown)} is not allowed ({_mark(event.start_mark)}): "
                                "schedule files hold plain text, numbers, booleans, lists and mappings")
            if self.depth >= MAX_DEPTH:
                raise Rejected(f"the document is nested too deeply (at most {MAX_DEPTH} levels, "
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
                    raise Rejected(f"mapping keys must be plain text ({_mark(key.start_mark)})")
                key.tag = str_tag  # `1: x`, `on: x` and `null: x` are keys "1", "on" and "null"
                if key.value in seen:
                    raise Rejected(f"duplicate key {short(key.value)} {_mark(key.start_mark)} "
                                    f"(first {_mark(seen[key.value])})")
                seen[key.value] = key.start_mark
            return node

    return StrictLoader


def short(value: Any, limit: int = 60) -> str:
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return "a very large number"
    return clip(repr(value), limit)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

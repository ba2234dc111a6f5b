"""Scenario-wide modes: where DCS's documents disagree or are silent, each reading is a mode a test can select.

The defaults keep the emulator's original behaviour (what the function's existing tests were written against);
every other value is opt-in. One table (``SPECS``) drives validation, the seed's ``"modes"`` object, the admin
route, ``Emulator(...)`` keyword arguments and ``python -m dcs_emulator`` flags, so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import errors


@dataclass(frozen=True)
class ModeSpec:
    name: str
    default: Any
    choices: tuple[Any, ...] | None  # None: a bool or an optional int, see ``kind``
    kind: str  # "choice" | "bool" | "count"
    help: str


SPECS: tuple[ModeSpec, ...] = (
    ModeSpec(
        "stop_start_refusal", "entry", ("entry", "request"), "choice",
        "how DCS refuses stop/start for an instance that cannot be stopped or started: 'entry' (that entry "
        "answered failed in a 200) or 'request' (the whole PUT answered 400 DCS.4007, nothing done)",
    ),
    ModeSpec(
        "stop_start_default", "all", ("all", "none", "redis3"), "choice",
        "which instances support stop/start when an instance does not say (stop_start_supported): 'all', "
        "'none', or 'redis3' (Redis engine older than 4.0: the emulator's reading of the guide's 'old instances')",
    ),
    ModeSpec(
        "batch_refusal", "entry", ("entry", "request"), "choice",
        "how DCS refuses an instance in a state it does not accept: 'entry' (per-entry failed in a 200) or "
        "'request' (the whole PUT answered 400 with the state's DCS code, nothing done for any instance)",
    ),
    ModeSpec(
        "restarting_code", errors.RESTARTING, (errors.RESTARTING, errors.CREATING_OR_RESTARTING), "choice",
        "the code of a whole-request refusal for a RESTARTING (or CREATING) instance: DCS.4111/DCS.4118 as the "
        "error code table has them, or DCS.4975 ('creating/restarting' in the Terraform provider) for both",
    ),
    ModeSpec(
        "refusal_names_instance", False, None, "bool",
        "append '(instance <id>)' to whole-request refusal messages (DCS's documented messages name no instance)",
    ),
    ModeSpec(
        "restart_during_backup", "refuse", ("refuse", "cancel_backup"), "choice",
        "restart/soft_restart while a backup is waiting or running: 'refuse' (failed entry, or DCS.4096 for the "
        "whole request) or 'cancel_backup' (accepted; the backup record becomes failed)",
    ),
    ModeSpec(
        "list_tags", True, None, "bool",
        "whether ListInstances entries carry 'tags' (unverified on DCS; GET .../instances/{id}/tags always does)",
    ),
    ModeSpec(
        "maintain_window_rule", "any", ("any", "four_hour", "one_hour"), "choice",
        "which maintain_begin/maintain_end pairs add_instance accepts: 'any' HH:mm:ss, 'four_hour' (the SDK's "
        "CreateInstanceBody: begin 22/02/06/10/14/18:00:00, end 4 h later) or 'one_hour' (the Terraform docs: "
        "begin on the hour, end 1 h later)",
    ),
    ModeSpec(
        "max_batch", None, None, "count",
        "refuse a status PUT naming more instances than this with 400 DCS.4100 (documented limit: 50); "
        "None or 0: no limit",
    ),
)  # fmt: skip
_BY_NAME = {spec.name: spec for spec in SPECS}
NAMES = tuple(_BY_NAME)


@dataclass(frozen=True)
class Modes:
    stop_start_refusal: str = "entry"
    stop_start_default: str = "all"
    batch_refusal: str = "entry"
    restarting_code: str = errors.RESTARTING
    refusal_names_instance: bool = False
    restart_during_backup: str = "refuse"
    list_tags: bool = True
    maintain_window_rule: str = "any"
    max_batch: int | None = None

    def updated(self, changes: Mapping[str, Any]) -> Modes:
        """A copy with ``changes`` applied; values may be strings (seed, CLI, admin); errors name the mode."""
        values = {name: parse(name, value) for name, value in changes.items()}
        return dataclasses.replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse(name: str, value: Any) -> Any:
    """Validate one mode value (accepting the string forms a seed, a flag or a JSON body carries)."""
    spec = _BY_NAME.get(name)
    if spec is None:
        raise ValueError(f"unknown mode {name!r}; the modes are {', '.join(NAMES)}")
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"mode {name} must be true or false, not {value!r}")
    if spec.kind == "count":
        if value is None or (isinstance(value, str) and value.lower() in ("", "none")):
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"mode {name} must be a whole number or None, not {value!r}") from None
        if isinstance(value, bool) or number < 0:
            raise ValueError(f"mode {name} must be a whole number >= 0 or None, not {value!r}")
        return number or None
    assert spec.choices is not None
    if value not in spec.choices:
        raise ValueError(f"mode {name} must be one of {', '.join(map(str, spec.choices))}, not {value!r}")
    return value

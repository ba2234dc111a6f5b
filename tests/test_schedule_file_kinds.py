"""Issue 12: what the loader finds in the schedules folder besides regular files.

Anything named like a schedule file (`*.yaml`, `*.yml`, `*.json`) is either loaded or reported as a problem, never
skipped in silence (its schedules would stop running without a word). A symbolic link that leads outside the folder
is refused, and what it points at is never echoed in problems, logs or responses.
"""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest
from conftest import NIGHTLY, add_staging_pair, t

from dcs_maintenance.loader import clear_cache, load_catalog

SECRET = "TOPSECRET-4e1b9c"
OUTSIDE = f"schedules:\n  - name: {SECRET.lower()}\n    action: restart\n    description: {SECRET}\n"


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def problems_by_file(directory) -> dict[str, str]:
    catalog = load_catalog(directory)
    return {p.file.split("/", 1)[1]: p.message for p in catalog.problems}


def test_regular_files_and_links_inside_the_folder_load(schedules_dir):
    (schedules_dir / "nightly.yaml").write_text(NIGHTLY)
    (schedules_dir / "sub").mkdir()
    (schedules_dir / "sub" / "more.yml").write_text(NIGHTLY.replace("nightly", "more"))
    (schedules_dir / "more.yml").symlink_to("sub/more.yml")
    catalog = load_catalog(schedules_dir)
    assert catalog.ok and sorted(s.name for s in catalog.schedules) == ["more", "nightly"]


def test_a_dangling_symlink_is_a_problem(schedules_dir):
    (schedules_dir / "gone.yaml").symlink_to(schedules_dir / "removed.yaml")
    assert "symbolic link" in problems_by_file(schedules_dir)["gone.yaml"]
    assert "does not exist" in problems_by_file(schedules_dir)["gone.yaml"]


def test_a_directory_named_like_a_schedule_file_is_a_problem(schedules_dir):
    (schedules_dir / "team.yaml").mkdir()
    assert "directory" in problems_by_file(schedules_dir)["team.yaml"]


def test_a_fifo_is_a_problem_and_never_blocks_the_loader(schedules_dir):
    os.mkfifo(schedules_dir / "pipe.json")
    done: dict = {}
    thread = threading.Thread(target=lambda: done.setdefault("problems", problems_by_file(schedules_dir)),
                              daemon=True)
    thread.start()
    thread.join(20)
    assert "problems" in done, "the loader blocked on a FIFO"
    assert "FIFO" in done["problems"]["pipe.json"]


def test_a_device_is_a_problem(schedules_dir):
    try:
        os.mknod(schedules_dir / "null.yaml", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("cannot create a device node here")
    assert "device" in problems_by_file(schedules_dir)["null.yaml"]


def test_a_symlink_leading_outside_the_folder_is_refused_and_never_echoed(schedules_dir, tmp_path):
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(OUTSIDE)
    (schedules_dir / "linked.yaml").symlink_to(outside)
    (schedules_dir / "relative.yaml").symlink_to("../elsewhere.yaml")
    catalog = load_catalog(schedules_dir)
    assert catalog.schedules == ()
    messages = problems_by_file(schedules_dir)
    for name in ("linked.yaml", "relative.yaml"):
        assert "outside the schedules folder" in messages[name]
    text = json.dumps([p.to_dict() for p in catalog.problems])
    assert SECRET not in text and SECRET.lower() not in text and str(tmp_path) not in text


def test_outside_links_through_a_tick_and_the_routes_never_echo_the_content(emulator, function_env, schedules_dir,
                                                                            tmp_path, tick, http, capsys):
    add_staging_pair(emulator)
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(OUTSIDE)
    (schedules_dir / "linked.yaml").symlink_to(outside)
    (schedules_dir / "nightly.yaml").write_text(NIGHTLY)
    summary = tick(t("2026-12-01T19:00:00Z"))
    assert summary["ok"] is False and summary["counts"]["success"] == 2  # the valid file still runs
    listed = http("GET", "/schedules")
    out = capsys.readouterr()
    for text in (json.dumps(summary), listed["body"], out.out, out.err):
        assert SECRET not in text and SECRET.lower() not in text
    assert any("outside the schedules folder" in p["message"] for p in json.loads(listed["body"])["problems"])


def test_hidden_files_and_the_schema_are_still_left_alone(schedules_dir):
    (schedules_dir / ".draft.yaml").write_text("not: [valid")
    (schedules_dir / "schema.json").write_text("{}")
    (schedules_dir / "README.md").mkdir()
    catalog = load_catalog(schedules_dir)
    assert catalog.ok and catalog.files == ()

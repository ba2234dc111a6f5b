"""scripts/mutation.py stays true to the tree: every module and test file it names exists, and every listed
equivalent mutant says why (the run itself is too slow for CI; README "Mutation testing")."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("mutation_script", ROOT / "scripts" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_every_module_and_test_file_it_names_exists():
    script = _script()
    for name, (path, tests) in script.MODULES.items():
        assert (ROOT / path).is_file(), (name, path)
        missing = [t for t in tests if not (ROOT / "tests" / t).is_file()]
        assert missing == [], (name, missing)


def test_every_listed_equivalent_belongs_to_its_module_and_says_why():
    script = _script()
    listings = sorted((ROOT / "scripts" / "mutation_equivalents").glob("*.txt"))
    for listing in listings:
        if listing.stem == "README":
            continue
        assert listing.stem in script.MODULES, listing.name
        dotted = script.MODULES[listing.stem][0].removesuffix(".py").replace("/", ".")
        for line in listing.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            name, _, why = line.partition("#")
            assert re.fullmatch(rf"{re.escape(dotted)}\.\S+__mutmut_\d+", name.strip()), line
            assert len(why.strip()) >= 10, f"{listing.name}: {name.strip()} needs a reason"


def test_unknown_modules_are_refused_with_the_choices(capsys):
    script = _script()
    try:
        script.main(["bogus"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("an unknown module must be refused")
    assert "unknown module bogus: choose from planner, runner" in capsys.readouterr().err


def test_a_resumed_run_copies_only_what_changed_and_keeps_mutmuts_state(tmp_path, monkeypatch):
    """`--resume` keeps `.mutation/<module>/` (mutmut's results) and copies only the files whose content changed,
    so mutmut re-tests just the functions that changed; a fresh run starts from nothing. The module's mutmut
    settings are written once either way (mutmut starts over when they change)."""
    import shutil
    import subprocess

    script = _script()
    root = tmp_path / "project"
    (root / "dcs_maintenance").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "dcs_maintenance" / "m.py").write_text("x = 1\n")
    (root / "tests" / "test_m.py").write_text("def test_m():\n    pass\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)  # untracked files are listed too
    monkeypatch.setattr(script, "ROOT", root)
    monkeypatch.setattr(script, "WORK", tmp_path / "work")
    monkeypatch.setitem(script.MODULES, "m", ("dcs_maintenance/m.py", ["test_m.py"]))
    work = script.prepare("m")
    (work / "mutants").mkdir()
    (work / "mutants" / "mutmut-stats.json").write_text("{}")
    (root / "dcs_maintenance" / "m.py").write_text("x = 2\n")
    copied: list[str] = []
    real_copy = shutil.copy2
    monkeypatch.setattr(shutil, "copy2", lambda src, dst: copied.append(Path(src).relative_to(root).as_posix())
                        or real_copy(src, dst))
    assert script.prepare("m", resume=True) == work
    assert sorted(copied) == ["dcs_maintenance/m.py", "pyproject.toml"]  # pyproject: the work copy has settings
    assert (work / "dcs_maintenance" / "m.py").read_text() == "x = 2\n"
    assert (work / "mutants" / "mutmut-stats.json").is_file()
    config = (work / "pyproject.toml").read_text()
    assert config.count("[tool.mutmut]") == 1 and '["tests/test_m.py"]' in config
    script.prepare("m")
    assert not (work / "mutants").exists()


def test_against_needs_an_earlier_run_to_judge(capsys):
    script = _script()
    try:
        script.main(["--against", "tests/test_gaps_runner.py", "runner"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("--against without --resume must be refused")
    assert "--against needs --resume" in capsys.readouterr().err

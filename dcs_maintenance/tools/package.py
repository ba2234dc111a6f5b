"""Build the FunctionGraph deployment zip: `python -m dcs_maintenance package`.

The zip holds, at its root, what the function imports at run time and nothing else:

- `handler.py`; the `dcs_maintenance` package without its local tools (the `tools/` sub-package and the
  `python -m` entry `__main__.py`); the build fails if anything the handler reaches through any import
  statement (lazy imports inside functions included) is a local tool; and `schedules/`: the schedule
  files the loader reads (`--schedules DIR`, else SCHEDULES_DIR, else the repository's `schedules/`: the
  folder every other command reads), validated first
  with the package's schema (an invalid one stops the build unless `--allow-invalid`; the repository's
  example schedules shipped unchanged are a warning: they act once deployed), and the package's own
  `schema.json` (the one the function validates with at run time, whatever DIR holds);
- the wheels of `requirements.txt` for the target CPython and manylinux2014 x86_64, downloaded with
  `pip download --only-binary=:all:` and unpacked: `.dist-info` folders keep only METADATA and the
  licence files; C sources, type stubs and the packages' own test suites are left out;
- not pymongo's `pymongo`/`gridfs` packages nor dnspython: huaweicloudsdkcore pins pymongo but only
  imports its `bson` module (kept, from the same wheel);
- bytecode compiled by the TARGET interpreter (`__pycache__/*.cpython-310.pyc` for 3.10), hash-based
  so that it stays valid whatever timestamps the unzipped files get: checked-hash for this project's
  code (an edit in the console's editor still takes effect), unchecked-hash for the dependencies.
  Without that interpreter the build warns and ships sources only (each cold start then compiles
  ~600 modules, about a second).

When the target interpreter runs here (Linux x86_64), the unpacked tree is import-checked with it,
isolated (`-I -S`): the handler, every shipped module and every module they import, lazily or not.
The build fails when the zip is larger than the console's 40 MB upload limit.
"""

from __future__ import annotations

import argparse
import ast
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "dcs_maintenance"
FUNCTIONGRAPH_PYTHONS = ("3.9", "3.10", "3.12")
DEFAULT_PYTHON = "3.10"  # serverless.yml and deploy/terraform use the Python3.10 runtime
DEFAULT_OUTPUT = Path("dist") / "dcs-maintenance.zip"
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64")
CONSOLE_LIMIT_MB = 40.0  # the FunctionGraph console's zip upload limit (larger packages go through OBS)
MB = 1024 * 1024

# Local tooling, never deployed: the tools sub-package and the `python -m` entry.
LOCAL_TOOLS = (f"{PACKAGE}.tools", f"{PACKAGE}.__main__")
# Distributions left out entirely, and top-level packages dropped from wheels that are otherwise kept.
DROP_DISTRIBUTIONS = {"dnspython": "required by pymongo only; never imported"}
DROP_PACKAGES = {"pymongo": "huaweicloudsdkcore imports only bson from the pymongo wheel",
                 "gridfs": "part of the pymongo wheel; never imported"}
FORBIDDEN_MODULES = ("pymongo", "gridfs", "dns")
RESERVED = ("handler.py", PACKAGE, "schedules")  # the function's own top-level names
DROP_SUFFIXES = (".c", ".h", ".cpp", ".pyx", ".pxd", ".pyi")
TEST_DIRS = ("tests", "test", "benchmarks")  # a dependency's own test suite: <top-level package>/tests/...
KEEP_DIST_INFO = re.compile(r"^(METADATA|(LICEN[CS]E|COPYING|NOTICE|AUTHORS)[^/]*|licenses/.+)$", re.IGNORECASE)
ZIP_EPOCH = 1704067200  # 2024-01-01: fixed entry times (SOURCE_DATE_EPOCH overrides) for reproducible zips

Log = Callable[[str], None]


class PackageError(RuntimeError):
    """The build cannot go on; the message says why and what to do."""


class DownloadError(PackageError):
    """pip could not fetch the wheels (no network and an incomplete cache, or an unknown version)."""


class BadArgument(PackageError):
    """An option value that cannot work (exit status 2 on the command line)."""


# sha256 of the example schedule files as this repository ships them (line endings normalised): a build whose
# schedules still hold one of them, unchanged, warns that it acts once deployed. tests/test_cli_edges.py checks
# that this table matches schedules/: update it when an example changes.
EXAMPLE_SCHEDULES = {
    "6534a00e7dd019178f87ecba535d1605d008434975c4c3102a82ae61c9cf0573": "cache-flush.yaml",
    "1f5fcf14d6b46be3af839bb681fe7da29bfb0cd1503f12beb9ffd6cb31b114ca": "nightly-restart.yaml",
    "e691ca97cf6f882ee647b0f67878e18187d24b05c6c39c98b3175e3f8c20b131": "weekday-window.yaml",
    "b744be9d6aecf7dc6960681ec7340ae964e355dc02dec06e2be3cfc63b8bb79d": "weekly-soft-restart.yaml",
}


def content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


@dataclass
class BuildOptions:
    python: str = DEFAULT_PYTHON
    output: str | Path = DEFAULT_OUTPUT  # as typed: a trailing "/" means a folder, and Path() would drop it
    interpreter: Optional[str] = None  # the target Python; found on PATH / pyenv when None
    wheel_cache: Optional[Path] = None  # None: ~/.cache/dcs-maintenance/wheels
    refresh: bool = False  # ask the index even when the cache has every wheel
    offline: bool = False  # never ask the index
    verify: bool = True
    max_size_mb: float = CONSOLE_LIMIT_MB
    requirements: Path = ROOT / "requirements.txt"
    schedules: Optional[Path] = None  # the schedule files to ship (default: <root>/schedules)
    allow_invalid: bool = False  # ship schedules that do not validate (the function reports them at every tick)
    root: Path = ROOT
    log: Log = field(default=lambda message: None, repr=False)
    warnings: list[str] = field(default_factory=list)  # filled as the build goes, kept when it fails


@dataclass
class BuildResult:
    output: str
    size_bytes: int
    limit_bytes: int
    python: str
    platform: str
    interpreter: Optional[str]
    precompiled: bool
    verified: bool
    files: int
    distributions: list[dict[str, str]]
    excluded: dict[str, list[str]]
    largest: list[dict[str, Any]]
    warnings: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.size_bytes <= self.limit_bytes

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["ok"] = self.ok
        data["size_mb"] = round(self.size_bytes / MB, 2)
        data["limit_mb"] = round(self.limit_bytes / MB, 2)
        return data


# -- requirements and markers -------------------------------------------------------------------
def _packaging() -> tuple[Any, Any]:
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:  # pip always vendors it
        from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
        from pip._vendor.packaging.version import Version  # type: ignore[no-redef]
    return Requirement, Version


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def marker_env(python: str, full_version: Optional[str] = None) -> dict[str, str]:
    """PEP 508 marker values of the FunctionGraph runtime (CPython on Linux x86_64)."""
    full = full_version or f"{python}.0"
    return {"implementation_name": "cpython", "implementation_version": full, "os_name": "posix",
            "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_release": "",
            "platform_system": "Linux", "platform_version": "", "python_full_version": full,
            "python_version": python, "sys_platform": "linux", "extra": ""}


def _requirement_text(req: Any) -> str:
    if getattr(req, "url", None):
        raise PackageError(f"{req.name}: direct URL requirements cannot be downloaded for another platform")
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def target_requirements(path: Path, env: dict[str, str]) -> list[str]:
    """The requirement lines that apply to the target runtime, markers evaluated for IT (pip would use the host's)."""
    requirement_cls, _ = _packaging()
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = re.split(r"(^|\s)#", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement")):
            lines += target_requirements(path.parent / line.split(None, 1)[1].strip(), env)
            continue
        if line.startswith("-"):
            raise PackageError(f"{path}: option lines are not supported here: {line!r}")
        req = requirement_cls(line)
        if req.marker is None or req.marker.evaluate(env):
            lines.append(_requirement_text(req))
    return lines


def wheel_name(path: Path) -> tuple[str, str]:
    """(canonical distribution name, version) from a wheel's file name."""
    parts = path.name[:-4].split("-")
    if len(parts) < 5:
        raise PackageError(f"not a wheel file name: {path.name}")
    return canonical(parts[0]), parts[1]


def wheel_metadata(path: Path) -> Any:
    with zipfile.ZipFile(path) as zf:
        name = next((n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)), None)
        if name is None:
            raise PackageError(f"{path.name} has no METADATA")
        return HeaderParser().parsestr(zf.read(name).decode("utf-8", "replace"))


def missing_requirements(wheels: Iterable[Path], env: dict[str, str]) -> tuple[list[str], list[str]]:
    """Requirements of the downloaded wheels, markers evaluated for the target, that no wheel satisfies.

    Returns (missing requirement texts, version conflicts). pip evaluates dependency markers for the host
    Python; this closes the set for the target's (e.g. redis needs async-timeout below Python 3.11.3).
    """
    requirement_cls, version_cls = _packaging()
    wheels = list(wheels)
    present = dict(wheel_name(w) for w in wheels)
    missing: dict[str, str] = {}
    conflicts: list[str] = []
    for whl in wheels:
        dist, _ = wheel_name(whl)
        if dist in DROP_DISTRIBUTIONS:
            continue
        for text in wheel_metadata(whl).get_all("Requires-Dist") or []:
            req = requirement_cls(text)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonical(req.name)
            if name in DROP_DISTRIBUTIONS:
                continue
            if name not in present:
                missing.setdefault(name, _requirement_text(req))
            elif not req.specifier.contains(version_cls(present[name]), prereleases=True):
                conflicts.append(f"{dist} needs {text.split(';')[0].strip()}, got {present[name]}")
    return sorted(missing.values()), conflicts


# -- downloads ----------------------------------------------------------------------------------
def default_wheel_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dcs-maintenance" / "wheels"


def _pip_download(args: list[str], dest: Path, options: BuildOptions, cache: Path) -> None:
    base = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
            "--progress-bar", "off", "--only-binary=:all:", "--implementation", "cp",
            "--python-version", options.python, "--abi", "cp" + options.python.replace(".", ""),
            "-d", str(dest), "--find-links", str(cache)]
    for plat in PLATFORMS:
        base += ["--platform", plat]
    attempts = []
    if not options.refresh:
        attempts.append(("cache", base + ["--no-index"] + args))
    if not options.offline:
        attempts.append(("index", base + args))
    errors = []
    for where, cmd in attempts:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            options.log(f"wheels for {' '.join(args[-3:]) if len(args) < 4 else 'requirements'} from the {where}")
            return
        tail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip() and "WARNING" not in ln][-3:]
        errors.append(f"{where}: {' | '.join(tail) or f'exit {proc.returncode}'}")
    raise DownloadError("pip download failed (" + "; ".join(errors) + "). It needs the package index, or a wheel "
                        "cache that holds every wheel (--wheel-cache, --offline)")


def download_wheels(options: BuildOptions, full_version: Optional[str], work: Path) -> list[Path]:
    """Every wheel the runtime needs, for the target Python and platform; the cache is filled as a side effect."""
    cache = Path(options.wheel_cache or default_wheel_cache())
    cache.mkdir(parents=True, exist_ok=True)
    dest = work / "wheels"
    dest.mkdir()
    env = marker_env(options.python, full_version)
    reqs = target_requirements(options.requirements, env)
    req_file = work / "requirements-target.txt"
    req_file.write_text("\n".join(reqs) + "\n", encoding="utf-8")
    options.log(f"downloading wheels for CPython {options.python} {PLATFORMS[0]} ({len(reqs)} requirements)")
    _pip_download(["-r", str(req_file)], dest, options, cache)
    for _ in range(3):
        missing, conflicts = missing_requirements(sorted(dest.glob("*.whl")), env)
        if conflicts:
            raise PackageError("inconsistent dependency versions for the target: " + "; ".join(conflicts))
        if not missing:
            break
        options.log(f"dependencies pip skipped for the host's markers: {', '.join(missing)}")
        _pip_download(missing, dest, options, cache)
    else:
        raise PackageError(f"dependencies still missing after three rounds: {', '.join(missing)}")
    wheels = sorted(dest.glob("*.whl"))
    for whl in wheels:
        if not (cache / whl.name).exists():
            shutil.copy2(whl, cache / whl.name)
    return wheels


# -- the project's own files ------------------------------------------------------------------------
def _module_path(root: Path, module: str) -> Optional[Path]:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imported_names(path: Path, module: str = "") -> list[tuple[str, bool]]:
    """Every module name an import statement in `path` may load (module level or inside functions), with
    whether the import is guarded by `except ImportError` (an optional dependency)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            for inner in node.body:
                guarded.update(id(n) for n in ast.walk(inner))
    found: list[tuple[str, bool]] = []
    package = _package_of(module, path) if module else ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in guarded) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base_parts = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base:
                found.append((base, id(node) in guarded))
                found += [(f"{base}.{alias.name}", id(node) in guarded) for alias in node.names]
    return found


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = []
    if handler.type is None:
        return True
    for node in ast.walk(handler.type):
        if isinstance(node, ast.Name):
            names.append(node.id)
    return any(n in ("ImportError", "ModuleNotFoundError", "Exception", "BaseException") for n in names)


def package_modules(root: Path) -> dict[str, Path]:
    """Every module of the dcs_maintenance package by dotted name."""
    modules = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def reachable_modules(root: Path) -> dict[str, str]:
    """dcs_maintenance modules reachable from handler.py through any import statement, each with who imports it."""
    modules = package_modules(root)
    reached: dict[str, str] = {}
    queue: list[tuple[str, str, Path]] = [("handler", "handler.py", root / "handler.py")]
    while queue:
        name, _, path = queue.pop()
        for imported, _guarded in imported_names(path, name if name != "handler" else ""):
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):  # a module implies its parent packages
                candidate = ".".join(parts[:i])
                if candidate in modules and candidate not in reached:
                    reached[candidate] = name
                    queue.append((candidate, name, modules[candidate]))
    return reached


def is_local_tool(name: str) -> bool:
    return any(name == tool or name.startswith(tool + ".") for tool in LOCAL_TOOLS)


def shipped_modules(root: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The modules the function ships: the whole package but its local tools.
    Returns (shipped modules, left-out modules with why)."""
    shipped, left_out = {}, {}
    for name, path in package_modules(root).items():
        if is_local_tool(name):
            left_out[name] = "local tool"
        else:
            shipped[name] = path
    return shipped, left_out


def project_files(root: Path, warnings: list[str], schedules: Optional[Path] = None
                  ) -> tuple[list[tuple[Path, str]], list[str]]:
    """(source path, path in the zip) of handler.py, the package and schedules/; and the modules left out."""
    if not (root / "handler.py").is_file():
        raise PackageError(f"{root / 'handler.py'} not found")
    reached = reachable_modules(root)
    for name, importer in sorted(reached.items()):
        if is_local_tool(name):
            raise PackageError(f"{name} is a local tool but the function imports it (from {importer}): "
                               "the deployed code must not depend on dcs_maintenance/tools")
    shipped, left_out = shipped_modules(root)
    files = [(root / "handler.py", "handler.py")]
    for path in sorted(shipped.values()):
        files.append((path, path.relative_to(root).as_posix()))
    shipped_dirs = {path.parent for path in shipped.values()}
    for path in sorted((root / PACKAGE).rglob("*")):  # data files beside shipped modules
        if (path.is_file() and path.parent in shipped_dirs and path.suffix not in (".py", ".pyc", ".pyo")
                and "__pycache__" not in path.parts):
            files.append((path, path.relative_to(root).as_posix()))
    from dcs_maintenance.loader import schedule_files

    schema = root / "schedules" / "schema.json"  # the package's schema, used at run time whatever DIR holds
    if not schema.is_file():
        raise PackageError(f"{schema} not found: the function validates every schedule file against it")
    files.append((schema, "schedules/schema.json"))
    for path in schedule_files(Path(schedules or root / "schedules")):
        files.append((path, f"schedules/{path.name}"))
    excluded = sorted(modules_path.relative_to(root).as_posix() for modules_path in
                      (package_modules(root)[name] for name in left_out))
    return files, excluded


def check_schedules(directory: Path, allow_invalid: bool, warnings: list[str]) -> int:
    """Validate the schedules to ship, as the function will at run time (the package's schema and checks).

    Invalid ones stop the build (PackageError naming each) unless `allow_invalid`; the repository's examples,
    shipped unchanged, are a warning: deployed, they restart, flush and stop instances that match them.
    Returns the number of valid schedules."""
    from dcs_maintenance.loader import load_catalog, schedule_files

    if not directory.is_dir():
        raise BadArgument(f"--schedules {directory}: no such folder")
    catalog = load_catalog(directory)
    if catalog.problems:
        shown = [str(p) for p in catalog.problems[:10]]
        more = len(catalog.problems) - len(shown)
        listing = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        if not allow_invalid:
            raise PackageError(f"refusing to build: {len(catalog.problems)} problem(s) in the schedules it would "
                               f"ship ({directory}): {listing}. Fix them (python -m dcs_maintenance validate "
                               f"{directory}) or build anyway with --allow-invalid")
        warnings.append(f"shipping schedules with {len(catalog.problems)} problem(s) (--allow-invalid): {listing}")
    if not catalog.schedules:
        warnings.append(f"no valid schedule in {directory}: the deployed function will do nothing")
    examples = sorted(EXAMPLE_SCHEDULES[h] for h in (content_hash(p) for p in schedule_files(directory))
                      if h in EXAMPLE_SCHEDULES)
    if examples:
        warnings.append(f"the repository's example schedules are shipped unchanged ({', '.join(examples)}): once "
                        "deployed they act on every instance they match; replace them with your own "
                        "(or remove them) before you deploy")
    return len(catalog.schedules)


def resolve_output(output: str | Path) -> Path:
    """The zip's path: inside OUTPUT when it is an existing folder or ends with a slash (as `-o dist/` means).

    OUTPUT as the user typed it: `Path("new/")` is `new`, so a Path has already lost the slash that says folder."""
    text = str(output)
    path = Path(output)
    if not path.is_absolute():
        path = Path.cwd() / path
    if path.is_dir() or text.endswith(("/", os.sep)):
        path = path / DEFAULT_OUTPUT.name
    if path.is_dir():
        raise BadArgument(f"--output {output}: {path} is a folder; give a file name ending in .zip")
    return path


# -- unpacking ----------------------------------------------------------------------------------
def unpack_wheels(wheels: list[Path], staging: Path, excluded: dict[str, list[str]]) -> list[dict[str, str]]:
    """Unpack each wheel into the staging root (as pip would install it), leaving out what is never needed."""
    owners: dict[str, str] = {}
    dists = []
    dropped_packages: set[str] = set()
    dropped_tests: set[str] = set()
    for whl in wheels:
        dist, version = wheel_name(whl)
        if dist in DROP_DISTRIBUTIONS:
            excluded["distributions"].append(f"{dist} {version}")
            continue
        dists.append({"name": dist, "version": version, "wheel": whl.name})
        with zipfile.ZipFile(whl) as zf:
            for info in zf.infolist():
                target = _wheel_target(info.filename)
                if target is None or info.is_dir():
                    continue
                parts = PurePosixPath(target).parts
                if parts[0] in RESERVED:
                    raise PackageError(f"{whl.name} ships {target}, which would overwrite the function's own files")
                if parts[0] in DROP_PACKAGES:
                    dropped_packages.add(parts[0])
                    continue
                if len(parts) > 2 and parts[1] in TEST_DIRS and not parts[0].endswith(".dist-info"):
                    dropped_tests.add(f"{parts[0]}/{parts[1]}")
                    continue
                if "__pycache__" in parts or target.endswith((".pyc", ".pyo") + DROP_SUFFIXES):
                    continue
                if owners.get(target, dist) != dist:
                    raise PackageError(f"{target} is in both {owners[target]} and {dist}")
                owners[target] = dist
                dest = staging.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(zf.read(info))
    excluded["packages"] = sorted(dropped_packages)
    excluded["test_suites"] = sorted(dropped_tests)
    return dists


def _wheel_target(name: str) -> Optional[str]:
    """Where a wheel member goes in the function's code root, or None to leave it out."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise PackageError(f"unsafe path in a wheel: {name!r}")
    top = path.parts[0]
    if top.endswith(".dist-info"):
        rest = "/".join(path.parts[1:])
        return name if KEEP_DIST_INFO.match(rest) else None
    if top.endswith(".data"):
        if len(path.parts) > 2 and path.parts[1] in ("purelib", "platlib"):
            return "/".join(path.parts[2:])
        return None  # scripts, headers, data files: not used by an imported package
    return name


# -- interpreter, bytecode, import check ----------------------------------------------------------------
def _interpreter_version(path: str) -> Optional[str]:
    try:
        proc = subprocess.run([path, "-I", "-c", "import sys; print(sys.implementation.name, "
                                                 "'%d.%d.%d' % sys.version_info[:3])"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    fields = proc.stdout.split()
    if proc.returncode != 0 or len(fields) != 2 or fields[0] != "cpython":
        return None
    return fields[1]


def _pyenv_roots() -> list[Path]:
    roots = [os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv")]
    try:
        import pwd

        roots.append(str(Path(pwd.getpwuid(os.getuid()).pw_dir) / ".pyenv"))  # the real home, whatever $HOME says
    except (ImportError, KeyError):
        pass
    return [Path(r) for r in dict.fromkeys(r for r in roots if r)]


def interpreter_candidates(python: str) -> list[str]:
    found = []
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == python:
        found.append(sys.executable)
    on_path = shutil.which(f"python{python}")
    if on_path:
        found.append(on_path)
    for root in _pyenv_roots():
        versions = glob.glob(str(root / "versions" / f"{python}.*" / "bin" / f"python{python}"))

        def patch(p: str) -> int:
            tail = Path(p).parent.parent.name.split(".")[-1]
            return int(tail) if tail.isdigit() else -1

        found += sorted(versions, key=patch, reverse=True)
    found += [f"/usr/bin/python{python}", f"/usr/local/bin/python{python}"]
    return list(dict.fromkeys(p for p in found if os.path.exists(p)))


def find_interpreter(python: str, explicit: Optional[str] = None) -> tuple[Optional[str], Optional[str]]:
    """(path, full version) of a CPython `python` (X.Y), or (None, None) when none is found."""
    for candidate in [explicit] if explicit else interpreter_candidates(python):
        full = _interpreter_version(candidate)
        if full and full.rsplit(".", 1)[0] == python:
            return candidate, full
    if explicit:
        raise BadArgument(f"--interpreter {explicit} is not a working CPython {python}")
    return None, None


def precompile(interpreter: str, staging: Path, own: list[str]) -> list[str]:
    """Compile every .py with the target interpreter; return the files it could not compile."""
    deps = sorted(p.name for p in staging.iterdir()
                  if p.name not in own and p.name != "schedules" and not p.name.endswith(".dist-info")
                  and (p.is_dir() or p.suffix == ".py"))
    failed: list[str] = []
    for mode, entries in (("checked-hash", own), ("unchecked-hash", deps)):
        if not entries:
            continue
        proc = subprocess.run([interpreter, "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", mode,
                               *entries], cwd=staging, capture_output=True, text=True)
        if proc.returncode != 0:
            failed += re.findall(r"\*\*\* Error compiling '([^']+)'", proc.stdout + proc.stderr) or [
                f"compileall exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-300:]}"]
    return failed


VERIFY_SCRIPT = r"""
import importlib, json, os, sys, sysconfig
root, names, optional, forbidden = sys.argv[1], json.loads(sys.argv[2]), set(json.loads(sys.argv[3])), sys.argv[4:]
sys.path.insert(0, root)
errors, skipped = [], []
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        if name in optional or name.startswith("dcs_emulator"):
            skipped.append(name)
        else:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    except Exception as exc:
        errors.append(f"{name}: {type(exc).__name__}: {exc}")
try:
    from zoneinfo import ZoneInfo
    ZoneInfo("Asia/Shanghai")
except Exception as exc:
    errors.append(f"zoneinfo: {exc}")
stdlib = [os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")]
allowed = [os.path.realpath(root)] + stdlib
outside = sorted(n for n, m in list(sys.modules.items())
                 if getattr(m, "__file__", None) and not any(os.path.realpath(m.__file__).startswith(a)
                                                             for a in allowed))
loaded = sorted(n for n in sys.modules if n.split(".")[0] in forbidden)
print(json.dumps({"errors": errors, "skipped": skipped, "outside": outside, "forbidden": loaded,
                  "modules": len(sys.modules)}))
"""


def runtime_imports(staging: Path, own_modules: Iterable[str]) -> tuple[list[str], list[str]]:
    """handler, every shipped module, and every module they import (guarded imports listed as optional)."""
    names = ["handler"]
    optional: set[str] = set()
    files = [("handler", staging / "handler.py")]
    for module in own_modules:
        path = _module_path(staging, module)
        if path is not None:
            files.append((module, path))
            names.append(module)
    for module, path in files:
        for name, guarded in imported_names(path, module if module != "handler" else ""):
            if name.startswith("__future__"):
                continue
            names.append(name)
            if guarded:
                optional.add(name)
    # `from x import y` lists x.y, which is often a class, not a module: keep only names that resolve
    # to a module or package file in the tree or the stdlib; the rest are checked through their parent.
    resolved = [n for n in dict.fromkeys(names) if _is_module_name(staging, n)]
    return resolved, sorted(optional)


def _is_module_name(staging: Path, name: str) -> bool:
    if _module_path(staging, name) is not None:
        return True
    top = name.split(".")[0]
    if "." not in name:
        return True  # a top-level name is always a module
    if (staging / top).exists() or top == PACKAGE:
        base = staging.joinpath(*name.split("."))
        return any(p.exists() for p in (base.with_suffix(".py"), base / "__init__.py")) or bool(
            glob.glob(str(base) + ".*.so"))
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None  # stdlib submodules (host's stdlib: close enough)
    except (ImportError, ValueError):
        return False


def verify(interpreter: str, staging: Path, own_modules: list[str]) -> dict[str, Any]:
    names, optional = runtime_imports(staging, own_modules)
    with tempfile.TemporaryDirectory(prefix="dcsm-verify-home-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["HOME"] = home  # huaweicloudsdkcore writes $HOME/.huaweicloud at import
        proc = subprocess.run([interpreter, "-I", "-S", "-B", "-c", VERIFY_SCRIPT, str(staging), json.dumps(names),
                               json.dumps(optional), *FORBIDDEN_MODULES], capture_output=True, text=True, env=env,
                              timeout=300)
    if proc.returncode != 0:
        raise PackageError(f"import check crashed: {proc.stderr.strip()[-800:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["checked"] = len(names)
    problems = list(report["errors"])
    if report["forbidden"]:
        problems.append(f"modules that must not be imported were: {', '.join(report['forbidden'])}")
    if report["outside"]:
        problems.append(f"modules loaded from outside the package and the stdlib: {', '.join(report['outside'])}")
    if problems:
        raise PackageError("the unpacked package does not import cleanly: " + "; ".join(problems))
    return report


# -- the zip ----------------------------------------------------------------------------------------
def write_zip(staging: Path, output: Path) -> tuple[int, list[dict[str, Any]]]:
    """Write every staged file, sorted, with fixed times and 0644 modes; return (entries, largest groups)."""
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or ZIP_EPOCH)
    date_time = time.gmtime(max(epoch, 315532800))[:6]
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    groups: dict[str, int] = {}
    count = 0
    try:  # the zip appears whole or not at all; our .tmp never outlives a failure (or Ctrl-C)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for path in sorted(p for p in staging.rglob("*") if p.is_file()):
                rel = path.relative_to(staging).as_posix()
                info = zipfile.ZipInfo(rel, date_time)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o100644 << 16)
                info.create_system = 3  # unix, so the mode bits are honoured when unzipped
                zf.writestr(info, path.read_bytes(), compresslevel=6)
                count += 1
            for info in zf.infolist():
                top = info.filename.split("/")[0]
                top = re.sub(r"-[^-]+\.dist-info$", "", top) if top.endswith(".dist-info") else top
                groups[top] = groups.get(top, 0) + info.compress_size
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    largest = [{"name": name, "bytes": size} for name, size in sorted(groups.items(), key=lambda kv: -kv[1])[:8]]
    return count, largest


# -- the build ------------------------------------------------------------------------------------------
def build(options: BuildOptions) -> BuildResult:
    """Build the zip; raise PackageError when that is impossible (the size check is left to the caller)."""
    started = time.monotonic()
    if not re.fullmatch(r"3\.\d{1,2}", options.python):
        raise BadArgument(f"--python {options.python!r}: give a CPython version such as 3.10 or 3.12")
    warnings = options.warnings
    if options.python not in FUNCTIONGRAPH_PYTHONS:
        warnings.append(f"FunctionGraph has no Python {options.python} runtime (it has "
                        f"{', '.join(FUNCTIONGRAPH_PYTHONS)}): this zip is for local checks only")
    root = options.root
    output = resolve_output(options.output)
    schedules_dir = Path(options.schedules or root / "schedules")
    options.log(f"validating the schedules to ship ({schedules_dir})")
    check_schedules(schedules_dir, options.allow_invalid, warnings)
    interpreter, full_version = find_interpreter(options.python, options.interpreter)
    if interpreter is None:
        warnings.append(f"no CPython {options.python} interpreter found (looked on PATH, in pyenv and /usr/bin; "
                        "give one with --interpreter): bytecode NOT precompiled, so each cold start compiles the "
                        "modules it imports, and the import check was skipped")
    excluded: dict[str, list[str]] = {"modules": [], "distributions": [], "packages": [], "test_suites": []}
    with tempfile.TemporaryDirectory(prefix="dcsm-package-") as tmp:
        work = Path(tmp)
        staging = work / "code"
        staging.mkdir()
        files, excluded["modules"] = project_files(root, warnings, options.schedules)
        options.log(f"copying handler.py, {PACKAGE}/ and schedules/ ({len(files)} files)")
        for src, rel in files:
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        wheels = download_wheels(options, full_version, work)
        options.log(f"unpacking {len(wheels)} wheels")
        dists = unpack_wheels(wheels, staging, excluded)
        own_modules = [m for m in package_modules(staging)]
        precompiled = verified = False
        if interpreter is not None:
            options.log(f"compiling bytecode with {interpreter} (Python {full_version})")
            failed = precompile(interpreter, staging, ["handler.py", PACKAGE])
            if failed:
                warnings.append(f"{len(failed)} file(s) do not compile on Python {options.python} and ship as "
                                f"source only: {', '.join(failed[:10])}")
            precompiled = True
            runs_here = sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")
            if options.verify and runs_here:
                options.log("checking that the unpacked package imports in isolation (-I -S)")
                report = verify(interpreter, staging, own_modules)
                verified = True
                options.log(f"import check: {report['checked']} names, {report['modules']} modules loaded")
            elif options.verify:
                warnings.append(f"import check skipped: manylinux x86_64 extensions do not load on "
                                f"{sys.platform}/{platform.machine()}")
        options.log(f"writing {output}")
        count, largest = write_zip(staging, output)
    size = output.stat().st_size
    return BuildResult(
        output=str(output), size_bytes=size, limit_bytes=int(options.max_size_mb * MB), python=options.python,
        platform=PLATFORMS[0], interpreter=interpreter, precompiled=precompiled, verified=verified, files=count,
        distributions=[{"name": d["name"], "version": d["version"]} for d in dists], excluded=excluded,
        largest=largest, warnings=warnings, seconds=round(time.monotonic() - started, 1))


# -- command line ---------------------------------------------------------------------------------------
def _python_version(text: str) -> str:
    if not re.fullmatch(r"3\.\d{1,2}", text):
        raise argparse.ArgumentTypeError(f"{text!r}: give a CPython version such as 3.10 or 3.12")
    return text


def _size_mb(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of megabytes") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python", default=DEFAULT_PYTHON, metavar="X.Y", type=_python_version,
                        help=f"target runtime: 3.10 or 3.12 (FunctionGraph's Python3.10 / Python3.12; default "
                             f"{DEFAULT_PYTHON})")
    parser.add_argument("--output", "-o", default=str(DEFAULT_OUTPUT), metavar="PATH",
                        help=f"zip to write; an existing folder (or a path ending in /) gets "
                             f"{DEFAULT_OUTPUT.name} inside it (default {DEFAULT_OUTPUT})")
    parser.add_argument("--allow-invalid", action="store_true",
                        help="build even when a schedule file is invalid (the function then reports it at every "
                             "tick); without it the build refuses and names each problem")
    parser.add_argument("--interpreter", metavar="PATH",
                        help="the target Python, used to precompile bytecode and check imports (default: "
                             "pythonX.Y on PATH, pyenv versions, /usr/bin)")
    parser.add_argument("--wheel-cache", metavar="DIR",
                        help="folder keeping downloaded wheels (default ~/.cache/dcs-maintenance/wheels)")
    parser.add_argument("--refresh", action="store_true", help="ask the package index even when the cache has "
                                                                "every wheel")
    parser.add_argument("--offline", action="store_true", help="use only the wheel cache, never the index")
    parser.add_argument("--no-verify", action="store_true", help="skip the isolated import check")
    parser.add_argument("--max-size-mb", type=_size_mb, default=CONSOLE_LIMIT_MB, metavar="MB",
                        help=f"fail above this size (default {CONSOLE_LIMIT_MB:g}, the console's upload limit)")


def _human(size: int) -> str:
    return f"{size / MB:.1f} MB"


def result_text(result: BuildResult) -> str:
    lines = [f"{'built' if result.ok else 'TOO LARGE'} {result.output}: {_human(result.size_bytes)} "
             f"({result.size_bytes:,} bytes; limit {_human(result.limit_bytes)}), {result.files} files, "
             f"CPython {result.python} {result.platform}, {result.seconds:g} s"]
    if result.precompiled:
        lines.append(f"  bytecode: compiled by {result.interpreter} (cpython-{result.python.replace('.', '')}, "
                     "hash-based)")
    else:
        lines.append("  bytecode: NOT precompiled (no target interpreter)")
    lines.append("  import check: " + ("passed, isolated (-I -S) from the unpacked tree" if result.verified
                                       else "skipped"))
    lines.append("  dependencies: " + ", ".join(f"{d['name']} {d['version']}" for d in result.distributions))
    left = [*result.excluded["modules"], *(f"{p}/ (package)" for p in result.excluded["packages"]),
            *(f"{d} (distribution)" for d in result.excluded["distributions"]),
            *(f"{t}/" for t in result.excluded["test_suites"])]
    lines.append("  left out: " + ", ".join(left))
    lines.append("  largest (compressed): " + ", ".join(f"{g['name']} {_human(g['bytes'])}" for g in result.largest))
    return "\n".join(lines)


def run_cli(args: argparse.Namespace, schedules: Optional[Path] = None) -> int:
    """`package`: build and report. `schedules` is the folder to ship as the command line resolved it (--schedules,
    else SCHEDULES_DIR); without it, --schedules or the repository's."""
    from dcs_maintenance.tools import progress

    if schedules is None and getattr(args, "schedules", None):
        schedules = Path(args.schedules)
    steps = progress.Steps()
    options = BuildOptions(python=args.python, output=args.output, interpreter=args.interpreter,
                           wheel_cache=Path(args.wheel_cache) if args.wheel_cache else None, refresh=args.refresh,
                           offline=args.offline, verify=not args.no_verify, max_size_mb=args.max_size_mb,
                           schedules=schedules,
                           allow_invalid=getattr(args, "allow_invalid", False), log=steps.step)
    try:
        result = build(options)
    except (PackageError, OSError) as exc:  # OSError: an unwritable --output or --wheel-cache, a full disk
        steps.close()
        for warning in options.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": str(exc), "warnings": options.warnings}, indent=2))
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, BadArgument) else 1
    steps.close()
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result_text(result))
    if not result.ok:
        print(f"error: {result.output} is {_human(result.size_bytes)}, over the {_human(result.limit_bytes)} limit: "
              "upload it through OBS (code_type obs) or trim requirements.txt", file=sys.stderr)
        return 1
    return 0

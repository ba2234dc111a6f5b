"""The deployment zip: built for this machine's Python, unpacked, and run in a clean virtual environment.

The build downloads wheels from the package index the first time; they are kept in pytest's cache
(.pytest_cache/d/dcsm-wheels), so later runs build offline in a few seconds (with `-p no:cacheprovider`, in
`package`'s own default cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from datetime import datetime, timezone
from importlib.util import MAGIC_NUMBER
from pathlib import Path

import pytest
from conftest import AK, PROJECT, SK, wheel_cache

from dcs_emulator import Emulator, Fault
from dcs_maintenance.tools import package

HOST = f"{sys.version_info[0]}.{sys.version_info[1]}"
TOPIC = f"urn:smn:cn-north-4:{PROJECT}:ops"


def _build(request: pytest.FixtureRequest, tmp_path: Path, python: str) -> package.BuildResult:
    cache = wheel_cache(request)
    options = package.BuildOptions(python=python, output=tmp_path / f"dcs-maintenance-{python}.zip", wheel_cache=cache)
    try:
        return package.build(options)
    except package.DownloadError as exc:
        pytest.skip(f"no wheels: {exc}")


@pytest.fixture(scope="module")
def built(request, tmp_path_factory) -> package.BuildResult:
    return _build(request, tmp_path_factory.mktemp("dist"), HOST)


def test_the_zip_holds_the_function_and_nothing_local(built):
    assert built.ok and built.size_bytes < 40 * 1024 * 1024
    assert built.precompiled and built.verified
    names = set(zipfile.ZipFile(built.output).namelist())
    for needed in ("handler.py", "dcs_maintenance/__init__.py", "dcs_maintenance/app.py", "dcs_maintenance/notify.py",
                   "dcs_maintenance/gateway.py", "dcs_maintenance/http_api.py", "dcs_maintenance/ledger/sqlite.py",
                   "dcs_maintenance/ledger/redis.py", "schedules/schema.json", "schedules/nightly-restart.yaml",
                   "huaweicloudsdkdcs/v2/dcs_client.py", "huaweicloudsdksmn/v2/smn_client.py", "bson/__init__.py",
                   "yaml/__init__.py", "tzdata/__init__.py", "redis/__init__.py"):
        assert needed in names, needed
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"dcs_emulator", "tests", "demo", "scripts", "deploy", "pymongo", "gridfs", "dns", "bin"}
    assert not [n for n in names if n.startswith("dcs_maintenance/tools/")]
    assert "dcs_maintenance/__main__.py" not in names
    assert "dcs_maintenance/tools/cli.py" in built.excluded["modules"]
    assert "dnspython" in " ".join(built.excluded["distributions"])
    assert set(built.excluded["packages"]) == {"pymongo", "gridfs"}
    assert not [n for n in names if "/tests/" in n and not n.startswith("dcs_maintenance/")]
    assert not [n for n in names if n.endswith((".c", ".h", ".pyi"))]
    # .dist-info: METADATA and licences only
    info_files = {n.split("/", 1)[1] for n in names if n.split("/")[0].endswith(".dist-info")}
    assert "METADATA" in info_files and not info_files & {"RECORD", "WHEEL", "INSTALLER", "entry_points.txt"}


def test_bytecode_is_the_targets_and_hash_based(built):
    tag = sys.implementation.cache_tag  # cpython-311 here
    with zipfile.ZipFile(built.output) as zf:
        names = set(zf.namelist())
        pycs = [n for n in names if n.endswith(".pyc")]
        assert pycs and all(f".{tag}.pyc" in n and "/__pycache__/" in n or n.startswith("__pycache__/") for n in pycs)
        sources = [n for n in names if n.endswith(".py")]
        missing = [s for s in sources
                   if "/".join([*s.split("/")[:-1], "__pycache__", s.split("/")[-1][:-3] + f".{tag}.pyc"]) not in names]
        assert not missing, missing[:5]
        for name in ("dcs_maintenance/__pycache__/app." + tag + ".pyc", "__pycache__/handler." + tag + ".pyc"):
            header = zf.read(name)[:8]
            assert header[:4] == MAGIC_NUMBER
            assert int.from_bytes(header[4:8], "little") == 0b11  # checked-hash: console edits take effect
        header = zf.read(f"huaweicloudsdkcore/__pycache__/client.{tag}.pyc")[:8]
        assert int.from_bytes(header[4:8], "little") == 0b01  # unchecked-hash: never recompiled
        # none of the host's timestamp-based __pycache__ came along
        assert all(int.from_bytes(zf.read(n)[4:8], "little") & 1 for n in pycs)


RUNNER = textwrap.dedent('''
    import json, os, sys, time
    from datetime import datetime, timezone
    code = sys.argv[1]
    sys.path.insert(0, code)

    def snapshot():
        out = {}
        for base, _, files in os.walk(code):
            for f in files:
                p = os.path.join(base, f)
                out[p] = os.stat(p).st_mtime_ns
        return out

    before = snapshot()
    started = time.monotonic()
    import handler
    import_seconds = time.monotonic() - started

    class Context:
        def getRequestID(self): return "req-package-test"
        def getRemainingTimeInMilliSeconds(self): return 120000
        def getSecurityAccessKey(self): return os.environ["AGENCY_AK"]
        def getSecuritySecretKey(self): return os.environ["AGENCY_SK"]
        def getSecurityToken(self): return ""
        def getFunctionName(self): return "dcs-maintenance"

    at = datetime.fromisoformat(os.environ["TICK_AT"])
    timer = {"version": "v1.0", "time": at.isoformat(), "trigger_type": "TIMER", "trigger_name": "tick",
             "user_event": ""}
    summary = handler.handler(timer, Context())
    health = handler.handler({"httpMethod": "GET", "path": "/dcs-maintenance/health", "headers": {},
                              "queryStringParameters": {}, "pathParameters": {}, "body": "",
                              "isBase64Encoded": False, "requestContext": {}}, Context())
    after = snapshot()
    changed = sorted(p for p in after if before.get(p) != after[p])
    print(json.dumps({"summary": summary, "health": health, "changed": changed, "import_seconds": import_seconds,
                      "flags": [sys.flags.isolated, sys.flags.no_site],
                      "site": [p for p in sys.path if "site-packages" in p],
                      "forbidden": sorted(m for m in sys.modules if m.split(".")[0] in ("pymongo", "gridfs", "dns")),
                      "outside": sorted(n for n, m in list(sys.modules.items())
                                        if getattr(m, "__file__", None) and "site-packages" in m.__file__)}))
''')


def test_the_unzipped_package_runs_a_tick_in_a_clean_venv(built, tmp_path):
    code = tmp_path / "code"
    with zipfile.ZipFile(built.output) as zf:
        zf.extractall(code)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    at = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "now.yaml").write_text(
        f"schedules:\n  - name: now\n    action: restart\n    cron: '{at.minute} {at.hour} * * *'\n"
        "    instances: {ids: [i-ok, i-refused]}\n")
    with Emulator(ak=AK, sk=SK, projects=[PROJECT], transition_delay=0.0) as emu:
        emu.add_instance(PROJECT, instance_id="i-ok", name="cache-ok")
        emu.add_instance(PROJECT, instance_id="i-refused", name="cache-refused")
        emu.inject(Fault(endpoint="status", kind="failed_entries", instance_ids=["i-refused"]))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"),
            "AGENCY_AK": AK, "AGENCY_SK": SK, "TICK_AT": at.isoformat(),
            "DCS_ENDPOINT": emu.url, "DCS_REGION": "cn-north-4", "RUNTIME_PROJECT_ID": PROJECT,
            "RUNTIME_CODE_ROOT": str(code), "SCHEDULES_DIR": str(schedules), "TICK_PERIOD": "5m",
            "LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}", "LOG_LEVEL": "ERROR",
            "NOTIFY_SMN_TOPIC_URN": TOPIC, "API_TOKEN": "package-test-token-0123456789",
        }
        proc = subprocess.run([str(python), "-I", "-S", str(runner), str(code)], capture_output=True, text=True,
                              env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        restarts = emu.get_instance(PROJECT, "i-ok")["counters"]["restarts"]
        messages = emu.smn_messages
    assert report["flags"] == [1, 1] and report["site"] == [] and report["outside"] == []
    assert report["forbidden"] == []  # pymongo, gridfs, dnspython: never imported
    summary = report["summary"]
    results = {i["instance_id"]: i["result"] for s in summary["schedules"] for i in s["instances"]}
    assert results == {"i-ok": "success", "i-refused": "failed"}, summary
    assert restarts == 1
    assert summary["notification"]["sent"] is True and len(messages) == 1  # the SMN SDK works from the zip too
    assert "cache-refused" in messages[0]["message"]
    assert isinstance(report["health"].get("statusCode"), int) and report["health"]["statusCode"] != 500
    assert report["changed"] == [], "bytecode was rewritten at import: " + ", ".join(report["changed"][:5])


def _interpreter_magic(python: str) -> bytes:
    path, _ = package.find_interpreter(python)
    if path is None:
        pytest.skip(f"no Python {python} here")
    code = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    out = subprocess.run([path, "-c", code], capture_output=True, text=True, check=True).stdout
    return bytes.fromhex(out)


def test_a_build_for_functiongraphs_python_310_carries_310_bytecode(request, tmp_path):
    magic = _interpreter_magic("3.10")
    result = _build(request, tmp_path, "3.10")
    assert result.precompiled and result.verified and result.ok
    with zipfile.ZipFile(result.output) as zf:
        names = zf.namelist()
        assert "async_timeout/__init__.py" in names  # redis needs it below 3.11.3: markers read for the TARGET
        assert not [n for n in names if n.endswith(".pyc") and ".cpython-310." not in n]
        assert zf.read("dcs_maintenance/__pycache__/app.cpython-310.pyc")[:4] == magic
        assert any(n.startswith("yaml/_yaml.cpython-310-x86_64-linux-gnu") for n in names)


# -- pieces, without the network ---------------------------------------------------------------------------
def test_requirement_markers_are_evaluated_for_the_target(tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# comment\nredis==8.1.0\nasync-timeout==5.0.1; python_full_version < \"3.11.3\"  # redis\n"
                    "tomli==2.0.1 ; python_version < '3.11'\nnewthing==1.0; python_version >= '3.12'\n")
    assert package.target_requirements(reqs, package.marker_env("3.10")) == [
        "redis==8.1.0", "async-timeout==5.0.1", "tomli==2.0.1"]
    assert package.target_requirements(reqs, package.marker_env("3.12")) == ["redis==8.1.0", "newthing==1.0"]


def _fake_wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
        zf.writestr(f"{name}-{version}.dist-info/METADATA", meta)
        zf.writestr(f"{name}-{version}.dist-info/RECORD", "")
        zf.writestr(f"{name}/__init__.py", "")
    return path


def test_dependencies_pip_skipped_for_the_hosts_markers_are_found(tmp_path):
    wheels = [
        _fake_wheel(tmp_path, "redis", "8.1.0", ['async-timeout>=4.0.3; python_full_version < "3.11.3"']),
        _fake_wheel(tmp_path, "pymongo", "4.18.2", ["dnspython<3.0.0,>=1.16.0"]),
        _fake_wheel(tmp_path, "core", "1.0", ["pymongo==4.18.2", "pytest; extra == 'test'"]),
    ]
    missing, conflicts = package.missing_requirements(wheels, package.marker_env("3.10"))
    assert missing == ["async-timeout>=4.0.3"] and conflicts == []  # dnspython is dropped on purpose
    assert package.missing_requirements(wheels, package.marker_env("3.12")) == ([], [])


def test_wheel_members_are_filtered():
    target = package._wheel_target
    assert target("redis/client.py") == "redis/client.py"
    assert target("redis-8.1.0.dist-info/METADATA") == "redis-8.1.0.dist-info/METADATA"
    assert target("redis-8.1.0.dist-info/licenses/LICENSE") == "redis-8.1.0.dist-info/licenses/LICENSE"
    assert target("redis-8.1.0.dist-info/RECORD") is None
    assert target("x-1.0.data/purelib/x/y.py") == "x/y.py"
    assert target("x-1.0.data/scripts/run") is None
    with pytest.raises(package.PackageError):
        target("../evil.py")


def test_local_tools_are_left_out_and_the_function_never_imports_them():
    root = Path(package.ROOT)
    shipped, left_out = package.shipped_modules(root)
    assert {"dcs_maintenance.app", "dcs_maintenance.notify", "dcs_maintenance.ledger.sqlite",
            "dcs_maintenance.ledger.redis"} <= set(shipped)
    assert not [name for name in shipped if ".tools" in name or name.endswith("__main__")]
    assert {"dcs_maintenance.tools.cli", "dcs_maintenance.tools.demo", "dcs_maintenance.tools.package",
            "dcs_maintenance.tools.progress", "dcs_maintenance.tools.serve", "dcs_maintenance.tools.local",
            "dcs_maintenance.__main__"} <= set(left_out)
    assert not [name for name in package.reachable_modules(root) if package.is_local_tool(name)]


def test_a_function_module_that_imports_a_local_tool_refuses_the_build(tmp_path):
    (tmp_path / "dcs_maintenance" / "tools").mkdir(parents=True)
    (tmp_path / "dcs_maintenance" / "__init__.py").write_text("")
    (tmp_path / "dcs_maintenance" / "tools" / "__init__.py").write_text("")
    (tmp_path / "dcs_maintenance" / "tools" / "cli.py").write_text("")
    (tmp_path / "dcs_maintenance" / "app.py").write_text("def f():\n    from dcs_maintenance.tools import cli\n")
    (tmp_path / "handler.py").write_text("from dcs_maintenance.app import f\n")
    with pytest.raises(package.PackageError, match="dcs_maintenance.tools is a local tool"):
        package.project_files(tmp_path, [])


def test_the_host_interpreter_is_found():
    path, full = package.find_interpreter(HOST)
    assert path and full.startswith(HOST + ".")
    with pytest.raises(package.PackageError):
        package.find_interpreter(HOST, explicit="/nonexistent/python")

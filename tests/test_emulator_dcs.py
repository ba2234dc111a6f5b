"""The emulator answering as DCS is documented to answer (issues 11 and 13), through the official SDK over HTTP.

Each behaviour is exercised in each of its modes, and each mode is selected the ways a test, a seed or a demo can:
the ``Emulator(...)`` keyword, the seed's ``"modes"`` object, ``set_modes`` and the ``/_emulator/modes`` route, and
``python -m dcs_emulator`` flags. Documents behind each behaviour: dcs_emulator/README.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dcs_emulator import Emulator, Fault  # noqa: E402

AK, SK = "EMUDCSAK", "emu-dcs-sk-0123456789"
P1, P2 = "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "9a8b7c6d5e4f30211203f4e5d6c7b8a9"


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        import huaweicloudsdkdcs.v2 as dcs
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkcore.exceptions import exceptions
        from huaweicloudsdkcore.http.http_config import HttpConfig

        yield SimpleNamespace(dcs=dcs, exc=exceptions, BasicCredentials=BasicCredentials, HttpConfig=HttpConfig)


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(clock: FakeClock):
    """Start an emulator on the fake clock (transition_delay 5 s) with mode keywords; stopped after the test."""
    started: list[Emulator] = []

    def build(**kwargs: Any) -> Emulator:
        kwargs.setdefault("transition_delay", 5.0)
        emu = Emulator(ak=AK, sk=SK, projects=[P1, P2], clock=clock, **kwargs).start()
        started.append(emu)
        return emu

    yield build
    for emu in started:
        emu.stop()


@pytest.fixture
def emu(make) -> Emulator:
    return make()


def dcs_client(sdk: Any, emulator: Any, sk: str = SK, project: str = P1) -> Any:
    config = sdk.HttpConfig.get_default_config()
    config.retry_times = 0
    return (
        sdk.dcs.DcsClient.new_builder()
        .with_http_config(config)
        .with_credentials(sdk.BasicCredentials(AK, sk, project))
        .with_endpoints([emulator.url])
        .build()
    )


def change(sdk: Any, emulator: Emulator, ids: list[str], action: str) -> dict[str, str]:
    body = sdk.dcs.ChangeInstanceStatusBody(instances=ids, action=action)
    response = dcs_client(sdk, emulator).restart_or_flush_instances(sdk.dcs.RestartOrFlushInstancesRequest(body=body))
    return {r.instance: r.result for r in response.results}


def refused(sdk: Any, emulator: Emulator, ids: list[str], action: str) -> Any:
    """The ClientRequestException of a whole-request refusal."""
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        change(sdk, emulator, ids, action)
    return info.value


def admin(emulator: Emulator, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{emulator.url}/_emulator{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=5) as response:
        return json.loads(response.read())


def status_of(emulator: Emulator, instance_id: str, project: str = P1) -> str:
    return emulator.get_instance(project, instance_id)["status"]


def write_seed(tmp_path: Path, instances: list[dict], modes: dict | None = None, project: str = P1) -> Path:
    seed = {"projects": {project: instances}}
    if modes is not None:
        seed["modes"] = modes
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    return path


# -- mode selection: constructor, seed, run time (method and admin route) --------------------------------------
SELECTIONS = ["constructor", "seed", "set_modes", "admin"]


def with_modes(make, tmp_path: Path, how: str, modes: dict, instances: list[dict] | None = None) -> Emulator:
    """An emulator whose ``modes`` were selected ``how``, holding ``instances`` (seeded or added)."""
    instances = instances or []
    if how == "constructor":
        emulator = make(**modes)
    elif how == "seed":
        emulator = make()
        emulator.load_seed(write_seed(tmp_path, instances, modes))
        return emulator
    else:
        emulator = make()
        if how == "set_modes":
            emulator.set_modes(**modes)
        else:
            assert admin(emulator, "POST", "/modes", modes) == emulator.modes
    for fields in instances:
        fields = dict(fields)
        emulator.add_instance(P1, fields.pop("instance_id"), **fields)
    return emulator


def test_modes_default_to_the_original_behaviour_and_reject_unknown_values(make) -> None:
    emulator = make()
    assert emulator.modes == {
        "stop_start_refusal": "entry",
        "stop_start_default": "all",
        "batch_refusal": "entry",
        "restarting_code": "DCS.4111",
        "refusal_names_instance": False,
        "restart_during_backup": "refuse",
        "list_tags": True,
        "maintain_window_rule": "any",
        "max_batch": None,
    }
    assert admin(emulator, "GET", "/modes") == emulator.modes == admin(emulator, "GET", "/")["modes"]
    with pytest.raises(ValueError, match="batch_refusal must be one of entry, request"):
        emulator.set_modes(batch_refusal="sometimes")
    with pytest.raises(ValueError, match="unknown mode 'nonsense'"):
        make(nonsense=True)
    with pytest.raises(urllib.error.HTTPError) as info:
        admin(emulator, "POST", "/modes", {"list_tags": "maybe"})
    assert info.value.code == 400
    info.value.close()
    assert emulator.set_modes(list_tags="false", max_batch="50")["list_tags"] is False
    assert emulator.modes["max_batch"] == 50


def test_reset_restores_the_constructed_modes_then_the_seeds(make, tmp_path: Path) -> None:
    emulator = make(batch_refusal="request")
    emulator.load_seed(write_seed(tmp_path, [{"instance_id": "i-1"}], {"list_tags": False}))
    emulator.set_modes(stop_start_refusal="request", list_tags=True)
    emulator.reset()
    assert (emulator.modes["batch_refusal"], emulator.modes["list_tags"]) == ("request", False)
    assert emulator.modes["stop_start_refusal"] == "entry"


def test_explicit_constructor_modes_win_over_a_seeds(make, tmp_path: Path) -> None:
    emulator = make(modes={"batch_refusal": "request"})
    emulator.load_seed(write_seed(tmp_path, [], {"batch_refusal": "entry", "list_tags": False}))
    assert (emulator.modes["batch_refusal"], emulator.modes["list_tags"]) == ("request", False)


def test_seed_with_an_invalid_mode_names_the_file(make, tmp_path: Path) -> None:
    path = write_seed(tmp_path, [], {"batch_refusal": "later"})
    with pytest.raises(ValueError, match=r"seed\.json: modes: mode batch_refusal must be"):
        make().load_seed(path)


# -- 1. stop/start: only some instances can be stopped ---------------------------------------------------------
@pytest.mark.parametrize("how", SELECTIONS)
def test_stop_refused_per_entry_for_an_instance_that_cannot_be_stopped(sdk, make, tmp_path, how) -> None:
    instances = [{"instance_id": "i-old", "stop_start_supported": True},
                 {"instance_id": "i-new", "stop_start_supported": False}]  # fmt: skip
    emulator = with_modes(make, tmp_path, how, {"stop_start_refusal": "entry"}, instances)
    assert change(sdk, emulator, ["i-old", "i-new"], "stop") == {"i-old": "success", "i-new": "failed"}
    assert (status_of(emulator, "i-old"), status_of(emulator, "i-new")) == ("CLOSING", "RUNNING")
    assert emulator.get_instance(P1, "i-new")["counters"]["stops"] == 0
    entry = emulator.requests[-1]
    assert entry["codes"] == {"i-new": "DCS.4007"}
    assert "only old DCS Redis instances can be started or stopped" in entry["reasons"]["i-new"]


@pytest.mark.parametrize("how", SELECTIONS)
def test_stop_refused_for_the_whole_request_changes_nothing(sdk, make, tmp_path, how) -> None:
    instances = [{"instance_id": "i-old", "stop_start_supported": True},
                 {"instance_id": "i-new", "stop_start_supported": False}]  # fmt: skip
    emulator = with_modes(make, tmp_path, how, {"stop_start_refusal": "request"}, instances)
    error = refused(sdk, emulator, ["i-old", "i-new"], "stop")
    assert (error.status_code, error.error_code) == (400, "DCS.4007")
    assert error.error_msg.startswith("Instance type is not supported. Stop is not supported by this instance")
    assert "i-new" not in error.error_msg  # DCS's messages name no instance
    assert status_of(emulator, "i-old") == status_of(emulator, "i-new") == "RUNNING"
    assert emulator.get_instance(P1, "i-old")["counters"]["stops"] == 0
    assert emulator.requests[-1]["refused_by"] == "i-new"


def test_refusal_message_names_the_instance_only_when_asked(sdk, make) -> None:
    emulator = make(stop_start_refusal="request", refusal_names_instance=True)
    emulator.add_instance(P1, "i-new", stop_start_supported=False, status="CLOSED")
    assert refused(sdk, emulator, ["i-new"], "start").error_msg.endswith("(instance i-new)")


@pytest.mark.parametrize(
    ("default", "supported"),
    [("all", {"i-30", "i-60", "i-mc"}), ("none", set()), ("redis3", {"i-30"})],
)
def test_stop_start_default_decides_for_instances_that_do_not_say(sdk, make, default, supported) -> None:
    emulator = make(stop_start_default=default, transition_delay=0)
    emulator.add_instance(P1, "i-30", engine_version="3.0")
    emulator.add_instance(P1, "i-60", engine_version="6.0")
    emulator.add_instance(P1, "i-mc", engine="Memcached", engine_version="1.5")
    emulator.add_instance(P1, "i-forced", engine_version="6.0", stop_start_supported=True)
    results = change(sdk, emulator, ["i-30", "i-60", "i-mc", "i-forced"], "stop")
    assert {iid for iid, result in results.items() if result == "success"} == supported | {"i-forced"}
    assert emulator.get_instance(P1, "i-60")["stop_start_supported"] is (default == "all")


def test_stop_start_support_changes_at_run_time(sdk, emu) -> None:
    emu.add_instance(P1, "i-1", stop_start_supported=False)
    assert change(sdk, emu, ["i-1"], "stop") == {"i-1": "failed"}
    view = admin(emu, "POST", "/instance", {"project_id": P1, "instance_id": "i-1", "stop_start_supported": True})
    assert view["stop_start_supported"] is True
    assert change(sdk, emu, ["i-1"], "stop") == {"i-1": "success"}


# -- 2. tags -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", SELECTIONS)
def test_list_entries_can_omit_tags_while_show_tags_and_the_filter_keep_them(sdk, make, tmp_path, how) -> None:
    instances = [{"instance_id": "i-keep", "tags": {"maintenance-protect": "true", "env": "prod"}},
                 {"instance_id": "i-web", "tags": {"env": "prod"}}]  # fmt: skip
    emulator = with_modes(make, tmp_path, how, {"list_tags": False}, instances)
    client = dcs_client(sdk, emulator)
    page = client.list_instances(sdk.dcs.ListInstancesRequest(limit=1000))
    assert [i.tags for i in page.instances] == [None, None]
    assert ["tags" in entry for entry in json.loads(page.raw_content)["instances"]] == [False, False]  # no key at all
    filtered = client.list_instances(sdk.dcs.ListInstancesRequest(tags="maintenance-protect=true"))
    assert [i.instance_id for i in filtered.instances] == ["i-keep"]
    shown = client.show_tags(sdk.dcs.ShowTagsRequest(instance_id="i-keep"))
    assert sorted((t.key, t.value) for t in shown.tags) == [("env", "prod"), ("maintenance-protect", "true")]


def test_list_entries_carry_tags_by_default(sdk, emu) -> None:
    emu.add_instance(P1, "i-1", tags={"env": "prod"})
    page = dcs_client(sdk, emu).list_instances(sdk.dcs.ListInstancesRequest())
    assert [(t.key, t.value) for t in page.instances[0].tags] == [("env", "prod")]


def test_show_tags_is_signed_logged_faultable_and_404s_for_a_missing_instance(sdk, emu) -> None:
    emu.add_instance(P1, "i-1", tags=[{"key": "k", "value": "v"}])
    request = sdk.dcs.ShowTagsRequest(instance_id="i-1")
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        dcs_client(sdk, emu, sk="wrong").show_tags(request)
    assert (info.value.status_code, info.value.error_code) == (401, "APIGW.0301")
    emu.inject(Fault(endpoint="tags", kind="http_error", status=503, instance_ids=["i-1"]))
    with pytest.raises(sdk.exc.ServerResponseException):
        dcs_client(sdk, emu).show_tags(request)
    assert [(t.key, t.value) for t in dcs_client(sdk, emu).show_tags(request).tags] == [("k", "v")]
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        dcs_client(sdk, emu).show_tags(sdk.dcs.ShowTagsRequest(instance_id="missing"))
    assert (info.value.status_code, info.value.error_code, info.value.error_msg) == (
        404, "DCS.3022", "This DCS instance does not exist."
    )  # fmt: skip
    assert [(e["endpoint"], e["status"]) for e in emu.requests] == [
        ("tags", 401), ("tags", 503), ("tags", 200), ("tags", 404)
    ]  # fmt: skip


# -- 3. whole-request refusals of a batch ------------------------------------------------------------------------
BUSY = [
    ("RESTARTING", "restart", "DCS.4111", "the instance is restarting."),
    ("CREATING", "restart", "DCS.4118", "the instance is creating."),
    ("EXTENDING", "restart", "DCS.4113", "the instance is extending."),
    ("UPGRADING", "soft_restart", "DCS.4116", "the instance is upgrading."),
    ("ROLLBACKING", "flush", "DCS.4117", "the instance is rollbacking the version."),
    ("RESTORING", "restart", "DCS.4097", "the instance is restoring."),
    ("FREEZING", "restart", "DCS.4120", "the instance is Freezing."),
    ("CLOSED", "restart", "DCS.4049", "The instance status is not running."),
    ("ERROR", "flush", "DCS.4049", "The instance status is not running."),
    ("FLUSHING", "restart", "DCS.4026", "This operation is not allowed when the DCS instance is in the current state."),
    ("RUNNING", "start", "DCS.4026", "This operation is not allowed when the DCS instance is in the current state."),
]


@pytest.mark.parametrize(("status", "action", "code", "message"), BUSY)
def test_request_mode_refuses_the_whole_batch_with_the_documented_code(sdk, make, status, action, code, message):
    emulator = make(batch_refusal="request")
    emulator.add_instance(P1, "i-ok", status="CLOSED" if action == "start" else "RUNNING")
    emulator.add_instance(P1, "i-busy", status=status)
    error = refused(sdk, emulator, ["i-ok", "i-busy"], action)
    assert (error.status_code, error.error_code, error.error_msg) == (400, code, message)
    assert sum(emulator.get_instance(P1, "i-ok")["counters"].values()) == 0
    assert emulator.requests[-1]["refused_by"] == "i-busy"


@pytest.mark.parametrize(("status", "action", "code", "message"), BUSY)
def test_entry_mode_fails_only_the_refused_entry(sdk, make, status, action, code, message):
    emulator = make()
    emulator.add_instance(P1, "i-ok", status="CLOSED" if action == "start" else "RUNNING")
    emulator.add_instance(P1, "i-busy", status=status)
    assert change(sdk, emulator, ["i-ok", "i-busy"], action) == {"i-ok": "success", "i-busy": "failed"}
    assert emulator.requests[-1]["codes"] == {"i-busy": code}


@pytest.mark.parametrize("how", SELECTIONS)
def test_a_batch_of_50_with_one_busy_instance(sdk, make, tmp_path, how) -> None:
    instances = [{"instance_id": f"i-{n:02d}"} for n in range(49)] + [{"instance_id": "i-busy", "status": "UPGRADING"}]
    emulator = with_modes(make, tmp_path, how, {"batch_refusal": "request"}, instances)
    ids = [i["instance_id"] for i in instances]
    assert refused(sdk, emulator, ids, "restart").error_code == "DCS.4116"
    assert all(status_of(emulator, iid) == "RUNNING" for iid in ids[:49])
    emulator.set_modes(batch_refusal="entry")
    results = change(sdk, emulator, ids, "restart")
    assert [iid for iid, r in results.items() if r == "failed"] == ["i-busy"]


def test_restarting_code_4975_covers_creating_and_restarting(sdk, make) -> None:
    emulator = make(batch_refusal="request", restarting_code="DCS.4975")
    emulator.add_instance(P1, "i-r", status="RESTARTING")
    emulator.add_instance(P1, "i-c", status="CREATING")
    for iid in ("i-r", "i-c"):
        error = refused(sdk, emulator, [iid], "restart")
        assert (error.error_code, error.error_msg) == ("DCS.4975", "the instance is creating or restarting.")


def test_missing_ids_and_engines_stay_per_entry_in_request_mode(sdk, make) -> None:
    emulator = make(batch_refusal="request", stop_start_refusal="request")
    emulator.add_instance(P1, "i-ok")
    emulator.add_instance(P1, "i-old", engine_version="3.0")
    assert change(sdk, emulator, ["i-ok", "i-old", "missing"], "flush") == {
        "i-ok": "success", "i-old": "failed", "missing": "failed"
    }  # fmt: skip


def test_max_batch_refuses_more_than_50_instances(sdk, make) -> None:
    emulator = make(max_batch=50, transition_delay=0)
    ids = [emulator.add_instance(P1, f"i-{n}")["instance_id"] for n in range(51)]
    error = refused(sdk, emulator, ids, "restart")
    assert (error.error_code, error.error_msg) == (
        "DCS.4100", "The number of instance IDs in an instances array cannot exceed 50."
    )  # fmt: skip
    assert set(change(sdk, emulator, ids[:50], "restart").values()) == {"success"}


# -- 4. backups --------------------------------------------------------------------------------------------------
def test_backup_records_are_seedable_and_listed_through_the_sdk(sdk, emu, tmp_path) -> None:
    emu.load_seed(write_seed(tmp_path, [{"instance_id": "i-1", "backups": [
        {"backup_id": "b-old", "created_at": "2026-01-01T02:00:00.000Z", "status": "succeed", "backup_type": "auto"},
        {"backup_id": "b-run", "created_at": "2026-01-02T02:00:00.000Z", "status": "backuping", "seconds": 60},
    ]}]))  # fmt: skip
    client = dcs_client(sdk, emu)
    page = client.list_backup_records(sdk.dcs.ListBackupRecordsRequest(instance_id="i-1"))
    assert page.total_num == 2
    assert [(b.backup_id, b.status, b.instance_id) for b in page.backup_record_response] == [
        ("b-run", "backuping", "i-1"), ("b-old", "succeed", "i-1")
    ]  # fmt: skip
    assert page.backup_record_response[1].backup_type == "auto"
    early = client.list_backup_records(
        sdk.dcs.ListBackupRecordsRequest(instance_id="i-1", begin_time="20251231000000", end_time="20260101235959")
    )
    assert [b.backup_id for b in early.backup_record_response] == ["b-old"] and early.total_num == 1
    second = client.list_backup_records(sdk.dcs.ListBackupRecordsRequest(instance_id="i-1", offset=1, limit=1))
    assert [b.backup_id for b in second.backup_record_response] == ["b-old"] and second.total_num == 2
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        client.list_backup_records(sdk.dcs.ListBackupRecordsRequest(instance_id="i-1", begin_time="yesterday"))
    assert (info.value.status_code, info.value.error_code) == (400, "DCS.4800")
    assert emu.requests[-1]["endpoint"] == "backups"


def test_a_started_backup_waits_runs_then_succeeds(sdk, emu, clock) -> None:
    emu.add_instance(P1, "i-1")
    record = emu.start_backup(P1, "i-1", seconds=30, wait_seconds=10)
    assert record["status"] == "waiting"

    def status() -> str:
        page = dcs_client(sdk, emu).list_backup_records(sdk.dcs.ListBackupRecordsRequest(instance_id="i-1"))
        return page.backup_record_response[0].status

    clock.advance(9.9)
    assert status() == "waiting"
    clock.advance(0.2)
    assert status() == "backuping"
    clock.advance(29.8)  # 39.9 s after the start: 10 waiting + 29.9 backing up
    assert status() == "backuping"
    clock.advance(0.2)
    assert status() == "succeed"
    assert emu.backups(P1, "i-1")[0]["progress"] == "100.00"
    assert status_of(emu, "i-1") == "RUNNING"  # a backup is never an instance status


def test_backup_started_through_the_admin_route(sdk, emu) -> None:
    emu.add_instance(P1, "i-1")
    record = admin(emu, "POST", "/backups", {"project_id": P1, "instance_id": "i-1", "seconds": 5, "remark": "x"})
    assert (record["status"], record["remark"]) == ("backuping", "x")
    listed = admin(emu, "GET", f"/backups?project_id={P1}&instance_id=i-1")["backups"]
    assert [b["backup_id"] for b in listed] == [record["backup_id"]]


@pytest.mark.parametrize("action", ["restart", "soft_restart", "flush"])
def test_actions_during_a_backup_are_refused_per_entry_or_with_4096(sdk, make, action) -> None:
    emulator = make()
    emulator.add_instance(P1, "i-1")
    emulator.start_backup(P1, "i-1", seconds=None)
    assert change(sdk, emulator, ["i-1"], action) == {"i-1": "failed"}
    assert emulator.requests[-1]["codes"] == {"i-1": "DCS.4096"}
    emulator.set_modes(batch_refusal="request")
    error = refused(sdk, emulator, ["i-1"], action)
    assert (error.error_code, error.error_msg) == ("DCS.4096", "the instance is backuping.")
    assert emulator.backups(P1, "i-1")[0]["status"] == "backuping"


def test_cancel_backup_mode_accepts_a_restart_and_fails_the_backup(sdk, make) -> None:
    emulator = make(restart_during_backup="cancel_backup")
    emulator.add_instance(P1, "i-1")
    emulator.start_backup(P1, "i-1", seconds=None, wait_seconds=None)  # waiting for ever: still in progress
    assert change(sdk, emulator, ["i-1"], "flush") == {"i-1": "failed"}  # the guide says this of restarts only
    assert change(sdk, emulator, ["i-1"], "restart") == {"i-1": "success"}
    assert emulator.backups(P1, "i-1")[0]["status"] == "failed"


# -- 5. real statuses only -----------------------------------------------------------------------------------------
def test_set_status_refuses_undocumented_statuses_unless_asked(sdk, emu) -> None:
    emu.add_instance(P1, "i-1")
    for invented in ("BACKING_UP", "MIGRATING_DATA", "running"):
        with pytest.raises(ValueError, match="not a documented DCS instance status"):
            emu.set_status(P1, "i-1", invented)
    for counted in ("PAYING", "FREEZING", "MIGRATING"):  # StatusStatistic counts them
        emu.set_status(P1, "i-1", counted)
    emu.set_status(P1, "i-1", "BACKING_UP", allow_unknown=True)
    page = dcs_client(sdk, emu).list_instances(sdk.dcs.ListInstancesRequest())
    assert page.instances[0].status == "BACKING_UP"
    assert admin(emu, "POST", "/status", {"project_id": P1, "instance_id": "i-1", "status": "WEIRD",
                                          "allow_unknown": True})["status"] == "WEIRD"  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as info:
        admin(emu, "POST", "/status", {"project_id": P1, "instance_id": "i-1", "status": "WEIRD"})
    assert info.value.code == 400
    info.value.close()
    with pytest.raises(ValueError, match="not a documented"):
        emu.add_instance(P1, "i-2", status="BACKING_UP")
    assert emu.add_instance(P1, "i-3", status="BACKING_UP", allow_unknown_status=True)["status"] == "BACKING_UP"


def test_list_entries_carry_service_upgrade_and_sub_status(sdk, emu, tmp_path) -> None:
    emu.load_seed(write_seed(tmp_path, [{"instance_id": "i-up", "service_upgrade": True, "sub_status": "upgrading"},
                                        {"instance_id": "i-plain"}]))  # fmt: skip
    page = dcs_client(sdk, emu).list_instances(sdk.dcs.ListInstancesRequest())
    assert [(i.instance_id, i.service_upgrade, i.sub_status) for i in page.instances] == [
        ("i-up", True, "upgrading"), ("i-plain", False, "normal")
    ]  # fmt: skip
    emu.update_instance(P1, "i-plain", service_upgrade=True)
    shown = dcs_client(sdk, emu).show_instance(sdk.dcs.ShowInstanceRequest(instance_id="i-plain"))
    assert shown.service_upgrade is True
    with pytest.raises(ValueError, match="service_upgrade must be true or false"):
        emu.update_instance(P1, "i-plain", service_upgrade="yes")


# -- 6. facts for "restart empties this instance" ----------------------------------------------------------------
def test_cache_mode_and_spec_code_agree(sdk, emu) -> None:
    emu.add_instance(P1, "i-single", cache_mode="single")
    emu.add_instance(P1, "i-cluster", spec_code="redis.cluster.xu1.large.r2.8")
    emu.add_instance(P1, "i-default")
    emu.add_instance(P1, "i-old", spec_code="dcs.single_node", engine_version="3.0")
    client = dcs_client(sdk, emu)
    page = client.list_instances(sdk.dcs.ListInstancesRequest())
    listed = {i.instance_id: i.spec_code for i in page.instances}
    assert "single" in listed["i-single"] and listed["i-default"] == "redis.ha.xu1.large.r2.2"
    assert not any("cache_mode" in entry for entry in json.loads(page.raw_content)["instances"])  # ShowInstance only

    def mode(iid: str) -> str:
        return client.show_instance(sdk.dcs.ShowInstanceRequest(instance_id=iid)).cache_mode

    assert [mode(i) for i in ("i-single", "i-cluster", "i-default", "i-old")] == ["single", "cluster", "ha", "single"]
    with pytest.raises(ValueError, match="is a single spec, but cache_mode is 'ha'"):
        emu.add_instance(P1, "i-bad", spec_code="redis.single.xu1.large.2", cache_mode="ha")
    with pytest.raises(ValueError, match="single-node instance has no persistence"):
        emu.add_instance(P1, "i-bad", cache_mode="single", persistence="aof")
    with pytest.raises(ValueError, match="cache_mode must be one of"):
        emu.add_instance(P1, "i-bad", cache_mode="sharded")


@pytest.mark.parametrize(
    ("fields", "appendonly"),
    [({"persistence": "aof"}, "yes"), ({"persistence": "none"}, "no"), ({"cache_mode": "single"}, None),
     ({"engine": "Memcached", "engine_version": "1.5"}, None)],
)  # fmt: skip
def test_list_configurations_reports_appendonly_from_persistence(sdk, emu, fields, appendonly) -> None:
    emu.add_instance(P1, "i-1", **fields)
    response = dcs_client(sdk, emu).list_configurations(sdk.dcs.ListConfigurationsRequest(instance_id="i-1"))
    params = {c.param_name: c.param_value for c in response.redis_config}
    assert params.get("appendonly") == appendonly
    assert (response.status, response.config_status) == ("RUNNING", "SUCCESS")
    assert emu.requests[-1]["endpoint"] == "configs"


# -- 7. the status-statistics route --------------------------------------------------------------------------------
def test_get_instances_status_is_the_status_statistics_api(sdk, emu) -> None:
    for n, status in enumerate(["RUNNING", "RUNNING", "RESTARTING", "CLOSED", "CREATEFAILED"]):
        emu.add_instance(P1, f"r-{n}", status=status)
    emu.add_instance(P1, "m-1", engine="Memcached", engine_version="1.5", status="ERROR")
    emu.add_instance(P2, "other", status="RUNNING")
    client = dcs_client(sdk, emu)
    counts = client.list_number_of_instances_in_different_status(
        sdk.dcs.ListNumberOfInstancesInDifferentStatusRequest()
    )
    assert (counts.redis.running_count, counts.redis.restarting_count, counts.redis.createfailed_count) == (2, 1, 0)
    assert (counts.memcached.error_count, counts.memcached.running_count) == (1, 0)
    assert (counts.running_count, counts.error_count, counts.restarting_count) == (2, 1, 1)
    with_failures = client.list_number_of_instances_in_different_status(
        sdk.dcs.ListNumberOfInstancesInDifferentStatusRequest(include_failure="true")
    )
    assert with_failures.redis.createfailed_count == with_failures.createfailed_count == 1
    assert emu.requests[-1]["endpoint"] == "statistics"
    emu.inject(Fault(endpoint="statistics", kind="dcs_error", status=400, error_code="DCS.4026"))
    with pytest.raises(sdk.exc.ClientRequestException):
        client.list_number_of_instances_in_different_status(sdk.dcs.ListNumberOfInstancesInDifferentStatusRequest())


# -- 8. documented error codes --------------------------------------------------------------------------------------
def test_bad_requests_answer_documented_codes(sdk, emu) -> None:
    from dcs_emulator import errors

    assert errors.MESSAGES[errors.NOT_RUNNING] == "The instance status is not running."
    client = dcs_client(sdk, emu)
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        client.list_instances(sdk.dcs.ListInstancesRequest(limit=0))
    assert (info.value.error_code, info.value.error_msg) == (
        "DCS.4800", "Invalid limit in the request. It must be between 1 and 1000, got 0."
    )  # fmt: skip
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        client.show_instance(sdk.dcs.ShowInstanceRequest(instance_id="missing"))
    assert (info.value.status_code, info.value.error_code) == (404, "DCS.3022")


# -- 9. restart durations, instances that never come back, maintenance windows ------------------------------------
def test_each_instance_has_its_own_restart_duration(sdk, emu, clock) -> None:
    emu.add_instance(P1, "i-slow", restart_seconds=30)
    emu.add_instance(P1, "i-fast")  # the emulator's transition_delay: 5 s
    change(sdk, emu, ["i-slow", "i-fast"], "restart")
    clock.advance(5.1)
    assert (status_of(emu, "i-slow"), status_of(emu, "i-fast")) == ("RESTARTING", "RUNNING")
    clock.advance(25)
    assert status_of(emu, "i-slow") == "RUNNING"
    change(sdk, emu, ["i-slow"], "flush")  # other transitional states last as long
    clock.advance(29)
    assert status_of(emu, "i-slow") == "FLUSHING"


@pytest.mark.parametrize(("never_back", "after"), [(True, "RESTARTING"), ("stuck", "RESTARTING"), ("error", "ERROR")])
def test_instances_that_never_come_back(sdk, emu, clock, tmp_path, never_back, after) -> None:
    emu.load_seed(write_seed(tmp_path, [{"instance_id": "i-lost", "never_back": never_back, "restart_seconds": 60}]))
    change(sdk, emu, ["i-lost"], "restart")
    clock.advance(59)
    assert status_of(emu, "i-lost") == "RESTARTING"
    clock.advance(10_000)
    assert status_of(emu, "i-lost") == after
    with pytest.raises(ValueError, match="never_back must be"):
        emu.add_instance(P1, "i-bad", never_back="sometimes")


@pytest.mark.parametrize("how", SELECTIONS)
def test_maintenance_windows_follow_the_selected_rule(sdk, make, tmp_path, how) -> None:
    emulator = with_modes(make, tmp_path, how, {"maintain_window_rule": "four_hour"},
                          [{"instance_id": "i-night", "maintain_begin": "22:00:00", "maintain_end": "02:00:00"},
                           {"instance_id": "i-default"}])  # fmt: skip
    client = dcs_client(sdk, emulator)
    listed = {i.instance_id: (i.maintain_begin, i.maintain_end)
              for i in client.list_instances(sdk.dcs.ListInstancesRequest()).instances}  # fmt: skip
    assert listed == {"i-night": ("22:00:00", "02:00:00"), "i-default": ("02:00:00", "06:00:00")}
    shown = client.show_instance(sdk.dcs.ShowInstanceRequest(instance_id="i-night"))
    assert (shown.maintain_begin, shown.maintain_end) == ("22:00:00", "02:00:00")
    with pytest.raises(ValueError, match="four_hour"):
        emulator.add_instance(P1, "i-bad", maintain_begin="18:00:00", maintain_end="19:00:00")


def test_maintenance_window_rules(make) -> None:
    emulator = make()
    crossing = emulator.add_instance(P1, "i-any", maintain_begin="23:30:00", maintain_end="00:15:00")
    assert (crossing["maintain_begin"], crossing["maintain_end"]) == ("23:30:00", "00:15:00")
    assert emulator.add_instance(P1, "i-dflt")["maintain_begin"] == "18:00:00"
    emulator.set_modes(maintain_window_rule="one_hour")
    emulator.add_instance(P1, "i-hour", maintain_begin="23:00:00", maintain_end="00:00:00")
    with pytest.raises(ValueError, match="one_hour"):
        emulator.add_instance(P1, "i-bad", maintain_begin="22:00:00", maintain_end="02:00:00")
    with pytest.raises(ValueError, match="set in pairs"):
        emulator.add_instance(P1, "i-bad", maintain_begin="22:00:00")
    with pytest.raises(ValueError, match="HH:mm:ss"):
        emulator.add_instance(P1, "i-bad", maintain_begin="25:00:00", maintain_end="02:00:00")
    moved = emulator.update_instance(P1, "i-hour", maintain_begin="05:00:00", maintain_end="06:00:00")
    assert (moved["maintain_begin"], moved["maintain_end"]) == ("05:00:00", "06:00:00")


# -- 10. the status sampler ---------------------------------------------------------------------------------------
def test_sampler_records_every_status_after_every_request(sdk, emu, clock) -> None:
    for n in range(5):
        emu.add_instance(P1, f"i-{n}", restart_seconds=10)
    emu.add_instance(P2, "other")
    change(sdk, emu, ["i-0", "i-1"], "restart")
    clock.advance(5)
    change(sdk, emu, ["i-2"], "restart")
    clock.advance(6)  # i-0 and i-1 are back
    dcs_client(sdk, emu).list_instances(sdk.dcs.ListInstancesRequest())
    samples = emu.status_samples(P1)
    assert [s["endpoint"] for s in samples] == ["status", "status", "list"]
    assert [s["seq"] for s in samples] == [e["seq"] for e in emu.requests]
    assert [sorted(i for i, st in s["statuses"].items() if st != "RUNNING") for s in samples] == [
        ["i-0", "i-1"], ["i-0", "i-1", "i-2"], ["i-2"]
    ]  # fmt: skip
    assert emu.peak_not_running(P1) == 3
    assert emu.peak_not_running(P1, instance_ids=["i-0", "i-4"]) == 1
    assert "other" in emu.status_samples()[0]["statuses"]
    assert admin(emu, "GET", f"/samples?project_id={P1}")["samples"][-1]["statuses"]["i-2"] == "RESTARTING"
    admin(emu, "DELETE", "/samples")
    assert emu.status_samples() == []


def test_sampler_memory_is_bounded(sdk, make) -> None:
    emulator = make(status_sample_limit=2)
    emulator.add_instance(P1, "i-1")
    client = dcs_client(sdk, emulator)
    for _ in range(4):
        client.list_instances(sdk.dcs.ListInstancesRequest())
    assert [s["seq"] for s in emulator.status_samples()] == [3, 4]
    emulator.status_sample_limit = 0
    client.list_instances(sdk.dcs.ListInstancesRequest())
    assert emulator.status_samples() == []
    with pytest.raises(ValueError, match="status_sample_limit"):
        emulator.status_sample_limit = -1


# -- python -m dcs_emulator flags -------------------------------------------------------------------------------------
def test_cli_flags_select_scenario_modes(sdk, tmp_path: Path) -> None:
    seed = write_seed(tmp_path, [{"instance_id": "i-new", "tags": {"env": "prod"}, "stop_start_supported": False},
                                 {"instance_id": "i-busy", "status": "UPGRADING"}], {"list_tags": True})  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    args = [sys.executable, "-m", "dcs_emulator", "--seed", str(seed), "--port", "0", "--ak", AK, "--sk", SK,
            "--stop-start-refusal", "request", "--batch-refusal", "request", "--list-tags", "false",
            "--status-sample-limit", "5"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        remote = SimpleNamespace(url=proc.stdout.readline().strip())
        page = dcs_client(sdk, remote).list_instances(sdk.dcs.ListInstancesRequest())
        assert [i.tags for i in page.instances] == [None, None]  # the flag wins over the seed's modes
        assert refused(sdk, remote, ["i-new"], "stop").error_code == "DCS.4007"
        assert refused(sdk, remote, ["i-busy"], "restart").error_code == "DCS.4116"
        assert len(admin(remote, "GET", "/samples")["samples"]) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr

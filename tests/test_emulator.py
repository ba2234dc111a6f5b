"""The DCS emulator, exercised through the official SDK over real HTTP on loopback.

What the SDK sees is the point: each fault kind is asserted as the exception (or silent result) the SDK gives the
function, so these tests double as a record of the SDK's behaviour.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dcs_emulator import Emulator, Fault, signing  # noqa: E402

AK, SK = "EMUTESTAK", "emu-test-sk-0123456789"
P1, P2 = "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "9a8b7c6d5e4f30211203f4e5d6c7b8a9"
SEED = Path(__file__).with_name("emulator_seed.json")


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The SDK, imported with HOME in a temporary folder (its import writes $HOME/.huaweicloud)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        import huaweicloudsdkdcs.v2 as dcs
        import huaweicloudsdksmn.v2 as smn
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkcore.exceptions import exceptions
        from huaweicloudsdkcore.http.http_config import HttpConfig
        from huaweicloudsdkcore.sdk_request import SdkRequest
        from huaweicloudsdkcore.signer.signer import Signer

        yield SimpleNamespace(
            dcs=dcs,
            smn=smn,
            exc=exceptions,
            BasicCredentials=BasicCredentials,
            HttpConfig=HttpConfig,
            SdkRequest=SdkRequest,
            Signer=Signer,
        )


class FakeClock:
    """Monotonic seconds that move only when told: transitions without sleeping."""

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
def emu(clock: FakeClock):
    with Emulator(ak=AK, sk=SK, projects=[P1, P2], transition_delay=5.0, clock=clock) as emulator:
        yield emulator


@pytest.fixture
def client(sdk: Any):
    """Build a DcsClient (or SmnClient) on the emulator; keyword overrides for credentials and HttpConfig."""

    def build(
        emulator: Emulator,
        *,
        sk: str = SK,
        ak: str = AK,
        project: str | None = P1,
        token: str | None = None,
        timeout: tuple[float, float] | None = None,
        retry_times: int = 0,
        service: str = "dcs",
    ) -> Any:
        credentials = sdk.BasicCredentials(ak, sk, project) if project else sdk.BasicCredentials(ak, sk)
        if token is not None:
            credentials = credentials.with_security_token(token)
        config = sdk.HttpConfig.get_default_config()
        config.retry_times = retry_times
        if timeout is not None:
            config.timeout = timeout
        cls = sdk.dcs.DcsClient if service == "dcs" else sdk.smn.SmnClient
        return (
            cls.new_builder()
            .with_http_config(config)
            .with_credentials(credentials)
            .with_endpoints([emulator.url])
            .build()
        )

    return build


def list_all(sdk: Any, dcs_client: Any, **filters: Any) -> Any:
    return dcs_client.list_instances(sdk.dcs.ListInstancesRequest(**filters))


def change(sdk: Any, dcs_client: Any, ids: list[str], action: str) -> dict[str, str]:
    body = sdk.dcs.ChangeInstanceStatusBody(instances=ids, action=action)
    response = dcs_client.restart_or_flush_instances(sdk.dcs.RestartOrFlushInstancesRequest(body=body))
    return {r.instance: r.result for r in response.results}


def signed_request(
    sdk: Any,
    emulator: Emulator,
    method: str,
    path: str,
    query: list | None = None,
    body: bytes = b"",
    headers: dict | None = None,
    sk: str = SK,
) -> Any:
    """Sign with the SDK's own Signer and send with requests, for cases the SDK's clients cannot produce."""
    import requests

    req = sdk.SdkRequest(
        method=method,
        schema="http",
        host=urlparse(emulator.url).netloc,
        resource_path=path,
        query_params=query or [],
        header_params={"Content-Type": "application/json", **(headers or {})},
        body=body,
    )
    sdk.Signer(sdk.BasicCredentials(AK, sk, P1)).sign(req)
    return requests.request(method, req.url, headers=req.header_params, data=req.body, timeout=5)


def admin(emulator: Emulator, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{emulator.url}/_emulator{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=5) as response:
        return json.loads(response.read())


# -- signing ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("GET", "/v2/p1/instances", [], b""),
        ("GET", "/v2/p1/instances", [("name", "缓存 a+b~c/d%e"), ("limit", 1000), ("offset", 0)], b""),
        ("GET", "/v2/p1/instances", [("tags", "env=prod,team=a b"), ("include_failure", True)], b""),
        ("GET", "/v2/p1/instances", [("tags", ["b=2", "a=1"])], b""),
        ("PUT", "/v2/p1/instances/status", [], b'{"instances": ["x"], "action": "restart"}'),
        ("POST", "/v2/p1/notifications/topics/urn%3Asmn%3Ar%3Ap1%3At/publish", [], '{"message": "é"}'.encode()),
    ],
)
def test_emulator_accepts_exactly_what_the_sdk_signer_signs(
    sdk: Any, method: str, path: str, query: list, body: bytes
) -> None:
    req = sdk.SdkRequest(
        method=method,
        schema="http",
        host="127.0.0.1:1",
        resource_path=path,
        query_params=query,
        header_params={"Content-Type": "application/json", "X-Project-Id": "p1"},
        body=body,
    )
    sdk.Signer(sdk.BasicCredentials(AK, SK, "p1")).sign(req)
    raw_path, _, raw_query = req.uri.partition("?")
    headers = {k.lower(): v.encode("latin-1").decode("utf-8") for k, v in req.header_params.items()}
    kwargs = dict(method=method, raw_path=raw_path, raw_query=raw_query, headers=headers, body=req.body or b"")
    assert signing.verify(credentials={AK: SK}, **kwargs) == AK
    with pytest.raises(signing.SignatureError, match="does not match"):
        signing.verify(credentials={AK: "other"}, **kwargs)
    with pytest.raises(signing.SignatureError, match="does not match"):
        signing.verify(credentials={AK: SK}, **{**kwargs, "body": (req.body or b"") + b" "})


def test_wrong_secret_key_is_a_401_for_the_sdk_and_is_logged_without_secrets(sdk, emu, client) -> None:
    emu.add_instance(P1, name="a")
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        list_all(sdk, client(emu, sk="wrong"))
    assert (info.value.status_code, info.value.error_code) == (401, "APIGW.0301")
    assert "Incorrect IAM authentication information" in info.value.error_msg
    assert info.value.request_id == emu.requests[0]["request_id"]  # X-Request-Id reaches the exception
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        list_all(sdk, client(emu, ak="OTHERAK"))
    assert info.value.status_code == 401
    entries = emu.requests
    assert [(e["ak"], e["authenticated"], e["status"]) for e in entries] == [(AK, False, 401), ("OTHERAK", False, 401)]
    assert SK not in json.dumps(entries) and "Signature" not in json.dumps(entries)


def test_stale_x_sdk_date_is_rejected(sdk, emu) -> None:
    assert signed_request(sdk, emu, "GET", f"/v2/{P1}/instances").status_code == 200
    old = signed_request(sdk, emu, "GET", f"/v2/{P1}/instances", headers={"X-Sdk-Date": "20200101T000000Z"})
    assert old.status_code == 401
    assert old.json()["error_code"] == "APIGW.0301"
    assert "expired" in old.json()["error_msg"]


def test_security_token_must_match_the_configured_one(sdk, client) -> None:
    with Emulator(ak=AK, sk=SK, projects=[P1], security_token="TOKEN-1") as emu:
        assert list_all(sdk, client(emu, token="TOKEN-1")).instance_num == 0
        for bad in ("TOKEN-2", None):
            with pytest.raises(sdk.exc.ClientRequestException) as info:
                list_all(sdk, client(emu, token=bad))
            assert info.value.status_code == 401
    with Emulator(ak=AK, sk=SK, projects=[P1]) as emu, pytest.raises(sdk.exc.ClientRequestException) as info:
        list_all(sdk, client(emu, token="TOKEN-1"))
    assert "no token expected" in info.value.error_msg


def test_unknown_project_and_missing_project_id_are_rejected(sdk, emu, client) -> None:
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        list_all(sdk, client(emu, project="ffffffffffffffffffffffffffffffff"))
    # API Gateway's "The IAM user is not authorized to access the API." (DCS.4030 is a documented code of another
    # meaning: "The start time must be within the last seven days.")
    assert (info.value.status_code, info.value.error_code) == (403, "APIGW.0302")
    # Without a project id and with with_endpoints, the SDK sends the placeholder, percent-encoded.
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        list_all(sdk, client(emu, project=None))
    assert info.value.status_code == 400 and "{project_id}" in info.value.error_msg
    assert emu.requests[-1]["path"] == "/v2/{project_id}/instances"


# -- list and show ---------------------------------------------------------------------------------------------
def test_list_paginates_2500_instances_at_limit_1000(sdk, emu, client) -> None:
    ids = [emu.add_instance(P1, name=f"cache-{n:04d}")["instance_id"] for n in range(2500)]
    dcs = client(emu)
    seen, sizes = [], []
    for offset in range(0, 3000, 1000):
        page = list_all(sdk, dcs, offset=offset, limit=1000)
        assert page.instance_num == 2500
        sizes.append(len(page.instances))
        seen += [i.instance_id for i in page.instances]
    assert sizes == [1000, 1000, 500]
    assert seen == ids
    assert len(list_all(sdk, dcs).instances) == 10  # default limit
    beyond = list_all(sdk, dcs, offset=2500, limit=1000)
    assert (beyond.instance_num, beyond.instances) == (2500, [])
    for bad in ({"limit": 1001}, {"limit": 0}, {"offset": -1}):
        with pytest.raises(sdk.exc.ClientRequestException) as info:
            list_all(sdk, dcs, **bad)
        assert (info.value.status_code, info.value.error_code) == (400, "DCS.4800")  # "Invalid {0} in the request."


def test_list_filters(sdk, emu, client) -> None:
    a = emu.add_instance(P1, name="orders-cache", tags={"env": "prod", "team": "orders"})["instance_id"]
    b = emu.add_instance(P1, name="orders", tags={"env": "staging"}, status="CLOSED")["instance_id"]
    c = emu.add_instance(P1, name="会话 cache", tags=[{"key": "env", "value": "prod"}])["instance_id"]
    failed = emu.add_instance(P1, name="broken", status="CREATEFAILED")["instance_id"]
    emu.add_instance(P2, name="orders-elsewhere")
    dcs = client(emu)

    def ids(**filters: Any) -> list[str]:
        page = list_all(sdk, dcs, limit=1000, **filters)
        assert page.instance_num == len(page.instances)
        return [i.instance_id for i in page.instances]

    assert ids() == [a, b, c]
    assert ids(include_failure="true") == [a, b, c, failed]
    assert ids(name="orders") == [a, b]
    assert ids(name="orders", name_equal="true") == [b]
    assert ids(name="会话") == [c]
    assert ids(status="CLOSED") == [b]
    assert ids(instance_id=c) == [c]
    assert ids(tags="env=prod") == [a, c]
    assert ids(tags="env=prod,team=orders") == [a]
    assert ids(tags="team") == [a]
    assert ids(tags="env=dev") == []
    # The SDK's tags is a string; given a list it repeats the parameter, which the emulator refuses.
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        ids(tags=["env=prod", "team=orders"])
    assert info.value.status_code == 400
    assert emu.requests[-1]["query"]["tags"] == ["env=prod", "team=orders"]


def test_show_instance_and_missing_instance(sdk, emu, client) -> None:
    iid = emu.add_instance(P1, name="a", engine_version="6.0", tags={"env": "prod"}, spec_code="x.y")["instance_id"]
    shown = client(emu).show_instance(sdk.dcs.ShowInstanceRequest(instance_id=iid))
    assert (shown.instance_id, shown.name, shown.engine, shown.engine_version) == (iid, "a", "Redis", "6.0")
    assert (shown.status, shown.spec_code, shown.maintain_begin) == ("RUNNING", "x.y", "18:00:00")
    assert [(t.key, t.value) for t in shown.tags] == [("env", "prod")]
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        client(emu).show_instance(sdk.dcs.ShowInstanceRequest(instance_id="nope"))
    assert (info.value.status_code, info.value.error_code) == (404, "DCS.3022")


# -- status changes --------------------------------------------------------------------------------------------
def test_status_call_answers_every_entry_and_logs_why(sdk, emu, client) -> None:
    ok = emu.add_instance(P1, name="ok")["instance_id"]
    closed = emu.add_instance(P1, name="closed", status="CLOSED")["instance_id"]
    other = emu.add_instance(P2, name="other-project")["instance_id"]
    assert change(sdk, client(emu), [ok, closed, "missing", other], "restart") == {
        ok: "success",
        closed: "failed",
        "missing": "failed",
        other: "failed",
    }
    assert emu.get_instance(P1, ok)["counters"]["restarts"] == 1
    assert emu.get_instance(P1, closed)["counters"]["restarts"] == 0
    assert emu.calls("restart") == [{"instances": [ok, closed, "missing", other], "action": "restart"}]
    assert emu.calls("flush") == []
    reasons = emu.requests[-1]["reasons"]
    assert reasons[closed] == "restart needs RUNNING or ERROR, status is CLOSED"
    assert reasons["missing"] == reasons[other] == "no such instance in this project"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"instances": ["x"], "action": "reboot"}, "DCS.4064"),  # documented: invalid action
        ({"instances": [], "action": "restart"}, "DCS.4065"),  # documented: instances null or unspecified
        ({"action": "restart"}, "DCS.4065"),
    ],
)
def test_status_call_with_a_bad_body_is_a_400(sdk, emu, client, body: dict, code: str) -> None:
    request = sdk.dcs.RestartOrFlushInstancesRequest(body=sdk.dcs.ChangeInstanceStatusBody(**body))
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        client(emu).restart_or_flush_instances(request)
    assert (info.value.status_code, info.value.error_code) == (400, code)


@pytest.mark.parametrize(
    ("action", "status", "engine", "version", "result", "status_after"),
    [
        ("restart", "RUNNING", "Redis", "5.0", "success", "RESTARTING"),
        ("restart", "ERROR", "Redis", "5.0", "success", "RESTARTING"),
        ("restart", "CLOSED", "Redis", "5.0", "failed", "CLOSED"),
        ("restart", "EXTENDING", "Redis", "5.0", "failed", "EXTENDING"),
        ("soft_restart", "RUNNING", "Memcached", "3.0", "success", "RESTARTING"),
        ("soft_restart", "FROZEN", "Redis", "6.0", "failed", "FROZEN"),
        ("flush", "RUNNING", "Redis", "4.0", "success", "FLUSHING"),
        ("flush", "RUNNING", "Redis", "6.0", "success", "FLUSHING"),
        ("flush", "RUNNING", "Redis", "3.0", "failed", "RUNNING"),
        ("flush", "RUNNING", "Memcached", "6.0", "failed", "RUNNING"),
        ("flush", "ERROR", "Redis", "5.0", "failed", "ERROR"),
        ("stop", "RUNNING", "Redis", "5.0", "success", "CLOSING"),
        ("stop", "ERROR", "Redis", "5.0", "failed", "ERROR"),
        ("start", "CLOSED", "Redis", "5.0", "success", "STARTING"),
        ("start", "RUNNING", "Redis", "5.0", "failed", "RUNNING"),
    ],
)
def test_eligibility_rules(sdk, emu, client, action, status, engine, version, result, status_after) -> None:
    iid = emu.add_instance(P1, engine=engine, engine_version=version, status=status)["instance_id"]
    assert change(sdk, client(emu), [iid], action) == {iid: result}
    assert emu.get_instance(P1, iid)["status"] == status_after


def test_transitions_settle_after_the_delay(sdk, emu, client, clock: FakeClock) -> None:
    iid = emu.add_instance(P1, name="a")["instance_id"]
    dcs = client(emu)

    def status() -> str:
        return dcs.show_instance(sdk.dcs.ShowInstanceRequest(instance_id=iid)).status

    steps = [
        ("restart", "RESTARTING", "RUNNING"),
        ("flush", "FLUSHING", "RUNNING"),
        ("stop", "CLOSING", "CLOSED"),
        ("start", "STARTING", "RUNNING"),
    ]
    for action, transitional, settled in steps:
        assert change(sdk, dcs, [iid], action) == {iid: "success"}
        assert status() == transitional
        assert change(sdk, dcs, [iid], "restart") == {iid: "failed"}  # busy
        clock.advance(4.9)
        assert status() == transitional
        clock.advance(0.2)
        assert status() == settled
    counters = emu.get_instance(P1, iid)["counters"]
    assert counters == {"restarts": 1, "soft_restarts": 0, "flushes": 1, "stops": 1, "starts": 1}


def test_real_time_transition_delay_and_immediate_mode(sdk, client) -> None:
    with Emulator(ak=AK, sk=SK, projects=[P1], transition_delay=0.2) as emu:
        iid = emu.add_instance(P1)["instance_id"]
        change(sdk, client(emu), [iid], "stop")
        assert emu.get_instance(P1, iid)["status"] == "CLOSING"
        time.sleep(0.25)
        assert emu.get_instance(P1, iid)["status"] == "CLOSED"
        emu.transition_delay = 0
        change(sdk, client(emu), [iid], "start")
        assert emu.get_instance(P1, iid)["status"] == "RUNNING"


# -- faults, as the SDK sees them ------------------------------------------------------------------------------
def test_http_error_and_dcs_error_faults_change_nothing(sdk, emu, client) -> None:
    iid = emu.add_instance(P1)["instance_id"]
    dcs = client(emu)
    emu.inject(Fault(endpoint="status", kind="http_error", status=502))
    emu.inject(Fault(endpoint="status", kind="dcs_error", status=400, error_code="DCS.4049", error_msg="not running"))
    with pytest.raises(sdk.exc.ServerResponseException) as server_error:
        change(sdk, dcs, [iid], "restart")
    assert (server_error.value.status_code, server_error.value.error_code) == (502, "DCS.5000")
    with pytest.raises(sdk.exc.ClientRequestException) as client_error:
        change(sdk, dcs, [iid], "restart")
    assert (client_error.value.status_code, client_error.value.error_code) == (400, "DCS.4049")
    assert client_error.value.error_msg == "not running"
    assert emu.get_instance(P1, iid)["counters"]["restarts"] == 0
    assert change(sdk, dcs, [iid], "restart") == {iid: "success"}  # faults used up, in order
    assert [(e["fault"], e["status"]) for e in emu.requests] == [("http_error", 502), ("dcs_error", 400), (None, 200)]


def test_throttle_loses_the_body_for_get_and_put_but_not_for_post(sdk, emu, client) -> None:
    iid = emu.add_instance(P1)["instance_id"]
    emu.inject(Fault(endpoint="any", kind="throttle", times=3, retry_after=2))
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        change(sdk, client(emu), [iid], "restart")
    assert (info.value.status_code, info.value.error_code) == (429, "429")  # urllib3's RetryError, body lost
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        list_all(sdk, client(emu))
    assert (info.value.status_code, info.value.error_code) == (429, "429")
    smn = client(emu, service="smn")
    publish = sdk.smn.PublishMessageRequest(
        topic_urn="urn:smn:r:p:t", body=sdk.smn.PublishMessageRequestBody(message="m")
    )
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        smn.publish_message(publish)
    assert (info.value.status_code, info.value.error_code) == (429, "APIGW.0308")  # POST is not retried by urllib3
    emu.inject(Fault(endpoint="list", kind="throttle", retry_after=7))
    raw = signed_request(sdk, emu, "GET", f"/v2/{P1}/instances")
    assert (raw.status_code, raw.headers["Retry-After"]) == (429, "7")
    assert emu.get_instance(P1, iid)["counters"]["restarts"] == 0


def test_slow_answer_is_a_connection_exception_after_the_work_was_done(sdk, emu, client) -> None:
    iid = emu.add_instance(P1)["instance_id"]
    emu.inject(Fault(endpoint="status", kind="slow", delay=1.5))
    started = time.monotonic()
    with pytest.raises(sdk.exc.ConnectionException, match="Read timed out"):
        change(sdk, client(emu, timeout=(1, 0.5)), [iid], "restart")
    assert time.monotonic() - started < 1.4
    assert emu.get_instance(P1, iid)["counters"]["restarts"] == 1  # outcome unknown to the caller, yet done
    assert emu.requests[-1]["fault"] == "slow"


def test_slow_post_read_timeout_escapes_the_sdk_as_a_requests_exception(sdk, emu, client) -> None:
    import requests

    emu.inject(Fault(endpoint="smn", kind="slow", delay=1.5))
    smn = client(emu, service="smn", timeout=(1, 0.5))
    publish = sdk.smn.PublishMessageRequest(
        topic_urn="urn:smn:r:p:t", body=sdk.smn.PublishMessageRequestBody(message="m")
    )
    with pytest.raises(requests.exceptions.ReadTimeout):
        smn.publish_message(publish)
    assert len(emu.smn_messages) == 1


def test_transport_retry_resends_a_put_after_a_read_timeout(sdk, client) -> None:
    with Emulator(ak=AK, sk=SK, projects=[P1], transition_delay=0) as emu:
        iid = emu.add_instance(P1)["instance_id"]
        emu.inject(Fault(endpoint="status", kind="slow", delay=1.5))
        assert change(sdk, client(emu, timeout=(1, 0.5), retry_times=1), [iid], "restart") == {iid: "success"}
        assert emu.get_instance(P1, iid)["counters"]["restarts"] == 2
        assert len(emu.calls("restart")) == 2


def test_reset_before_and_reset_after(sdk, emu, client, clock: FakeClock) -> None:
    iid = emu.add_instance(P1)["instance_id"]
    dcs = client(emu)
    emu.inject(Fault(endpoint="status", kind="reset_before"))
    with pytest.raises(sdk.exc.ConnectionException):
        change(sdk, dcs, [iid], "restart")
    assert emu.get_instance(P1, iid)["counters"]["restarts"] == 0
    emu.inject(Fault(endpoint="status", kind="reset_after"))
    with pytest.raises(sdk.exc.ConnectionException):
        change(sdk, dcs, [iid], "restart")
    assert emu.get_instance(P1, iid)["status"] == "RESTARTING"
    assert emu.get_instance(P1, iid)["counters"]["restarts"] == 1
    assert [(e["fault"], e["status"]) for e in emu.requests] == [("reset_before", None), ("reset_after", None)]
    clock.advance(10)
    assert list_all(sdk, dcs).instances[0].status == "RUNNING"  # the pooled client recovers


def test_malformed_body_passes_silently_through_the_sdk(sdk, emu, client) -> None:
    iid = emu.add_instance(P1)["instance_id"]
    emu.inject(Fault(endpoint="status", kind="malformed"))
    emu.inject(Fault(endpoint="list", kind="malformed", body="{truncated"))
    request = sdk.dcs.RestartOrFlushInstancesRequest(
        body=sdk.dcs.ChangeInstanceStatusBody(instances=[iid], action="restart")
    )
    response = client(emu).restart_or_flush_instances(request)
    assert (response.status_code, response.results) == (200, None)  # no exception: check fields yourself
    assert b"502 Bad Gateway" in response.raw_content
    page = list_all(sdk, client(emu))
    assert (page.instance_num, page.instances) == (None, None)
    assert emu.get_instance(P1, iid)["counters"]["restarts"] == 0


def test_failed_entries_fault_fails_only_the_named_instances(sdk, emu, client) -> None:
    a, b = (emu.add_instance(P1, name=n)["instance_id"] for n in ("a", "b"))
    emu.inject(Fault(endpoint="status", kind="failed_entries", instance_ids=[b]))
    assert change(sdk, client(emu), [a, b], "flush") == {a: "success", b: "failed"}
    assert [emu.get_instance(P1, i)["counters"]["flushes"] for i in (a, b)] == [1, 0]
    assert emu.requests[-1]["reasons"] == {b: "failed by an injected fault"}


def test_fault_matching_times_probability_and_clearing(sdk, emu, client) -> None:
    a, b = (emu.add_instance(P1, name=n)["instance_id"] for n in ("a", "b"))
    dcs = client(emu)
    emu.inject(
        Fault(endpoint="show", kind="dcs_error", status=404, error_code="DCS.3022", instance_ids=[b], times=None)
    )
    emu.inject(Fault(endpoint="list", kind="http_error", probability=0.0))
    for _ in range(2):
        assert dcs.show_instance(sdk.dcs.ShowInstanceRequest(instance_id=a)).name == "a"
        with pytest.raises(sdk.exc.ClientRequestException):
            dcs.show_instance(sdk.dcs.ShowInstanceRequest(instance_id=b))
    assert list_all(sdk, dcs).instance_num == 2  # probability 0 never fires
    assert [f.kind for f in emu.faults()] == ["dcs_error", "http_error"]
    emu.clear_faults()
    assert dcs.show_instance(sdk.dcs.ShowInstanceRequest(instance_id=b)).name == "b"
    with pytest.raises(ValueError):
        Fault(endpoint="list", kind="failed_entries")
    with pytest.raises(ValueError):
        Fault(kind="slow", status=500)


# -- SMN -------------------------------------------------------------------------------------------------------
def test_smn_publish_through_the_smn_sdk(sdk, emu, client) -> None:
    urn = f"urn:smn:cn-north-4:{P1}:maintenance"
    smn = client(emu, service="smn")
    body = sdk.smn.PublishMessageRequestBody(subject="DCS maintenance", message="2 restarted")
    response = smn.publish_message(sdk.smn.PublishMessageRequest(topic_urn=urn, body=body))
    assert response.message_id and response.request_id
    [message] = emu.smn_messages
    assert (message["topic_urn"], message["project_id"], message["subject"], message["message"]) == (
        urn,
        P1,
        "DCS maintenance",
        "2 restarted",
    )
    assert message["message_id"] == response.message_id
    with pytest.raises(sdk.exc.ClientRequestException) as info:
        smn.publish_message(
            sdk.smn.PublishMessageRequest(topic_urn=urn, body=sdk.smn.PublishMessageRequestBody(subject="x"))
        )
    assert info.value.status_code == 400


# -- admin API, seed, CLI --------------------------------------------------------------------------------------
def test_admin_api_seed_and_reset(sdk, client) -> None:
    with Emulator(ak=AK, sk=SK, projects=[], transition_delay=0) as emu:
        emu.load_seed(SEED)
        assert admin(emu, "GET", "/")["projects"] == [P1, P2]
        assert len(admin(emu, "GET", f"/instances?project_id={P1}")["instances"]) == 5
        added = admin(emu, "POST", "/instances", {"project_id": P2, "name": "added", "tags": {"k": "v"}})
        assert added["tags"] == [{"key": "k", "value": "v"}]
        admin(emu, "POST", "/faults", {"endpoint": "list", "kind": "http_error", "status": 503})
        with pytest.raises(sdk.exc.ServerResponseException):
            list_all(sdk, client(emu, project=P2))
        assert list_all(sdk, client(emu, project=P2)).instance_num == 2
        admin(emu, "POST", "/status", {"project_id": P2, "instance_id": added["instance_id"], "status": "ERROR"})
        assert emu.get_instance(P2, added["instance_id"])["status"] == "ERROR"
        assert [r["status"] for r in admin(emu, "GET", "/requests")["requests"]] == [503, 200]
        admin(emu, "POST", "/reset")
        assert len(emu.instances(P2)) == 1 and emu.requests == [] and emu.faults() == []
        assert admin(emu, "GET", "/smn") == {"messages": []}
        with pytest.raises(urllib.error.HTTPError) as info:
            admin(emu, "POST", "/faults", {"kind": "nonsense"})
        assert info.value.code == 400
        info.value.close()


def test_cli_serves_a_seed_until_terminated(sdk, client, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    args = [sys.executable, "-m", "dcs_emulator", "--seed", str(SEED), *f"--port 0 --ak {AK} --sk {SK}".split()]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        remote = SimpleNamespace(url=url)
        page = list_all(sdk, client(remote, project=P1), tags="env=prod")
        assert sorted(i.name for i in page.instances) == ["legacy-cache", "memcached-legacy", "orders-cache"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert f"project {P1}: 5 instance(s)" in stderr


# -- real Redis ------------------------------------------------------------------------------------------------
def _redis_available() -> bool:
    from shutil import which

    return bool(os.environ.get("REDIS_SERVER") or which("redis-server") or Path("/usr/bin/redis-server").exists())


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.skipif(not _redis_available(), reason="redis-server not installed")
def test_redis_backed_instances_lose_or_keep_data_like_dcs(sdk, client) -> None:
    import redis

    with Emulator(ak=AK, sk=SK, projects=[P1], transition_delay=0, redis_backed=True) as emu:
        aof = emu.add_instance(P1, name="aof", persistence="aof")
        plain = emu.add_instance(P1, name="plain", persistence="none")
        old = emu.add_instance(P1, name="old", engine_version="3.0")
        dcs = client(emu)
        shown = dcs.show_instance(sdk.dcs.ShowInstanceRequest(instance_id=aof["instance_id"]))
        assert (shown.ip, shown.port) == ("127.0.0.1", aof["port"])
        conns = {i["name"]: redis.Redis(host=i["ip"], port=i["port"], socket_timeout=2) for i in (aof, plain, old)}
        for conn in conns.values():
            conn.set("k", "v")

        change(sdk, dcs, [aof["instance_id"], plain["instance_id"]], "restart")
        assert conns["aof"].get("k") == b"v"  # AOF survives a restart
        assert conns["plain"].get("k") is None  # no persistence: data lost, as on DCS

        assert change(sdk, dcs, [aof["instance_id"], old["instance_id"]], "flush") == {
            aof["instance_id"]: "success",
            old["instance_id"]: "failed",
        }
        assert conns["aof"].dbsize() == 0 and conns["old"].get("k") == b"v"

        conns["aof"].set("k", "again")
        change(sdk, dcs, [aof["instance_id"]], "stop")
        assert emu.get_instance(P1, aof["instance_id"])["status"] == "CLOSED"
        assert _refused(aof["port"])
        change(sdk, dcs, [aof["instance_id"]], "start")
        assert conns["aof"].get("k") == b"again"
        for conn in conns.values():
            conn.close()
    assert all(_refused(i["port"]) for i in (aof, plain, old))  # stop() ends every redis-server

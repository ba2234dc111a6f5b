"""deploy/after_serverless.py against a loopback FunctionGraph stub that checks every request's SDK-HMAC-SHA256
signature: the instance cap and asynchronous retries are set, and only then the Cron TIMER trigger; reruns change
nothing; invalid or unsafe settings change nothing at all."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from dcs_emulator.signing import SignatureError, verify

ROOT = Path(__file__).resolve().parent.parent
AK, SK = "DEPLOYAK0123456789", "deploy-secret-key-0123456789"
PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "cn-north-4"
FUNCTION_URN = f"urn:fss:{REGION}:{PROJECT}:function:default:dcs-maintenance"

spec = importlib.util.spec_from_file_location("after_serverless", ROOT / "deploy" / "after_serverless.py")
after_serverless = importlib.util.module_from_spec(spec)
sys.modules["after_serverless"] = after_serverless  # dataclasses look their module up
spec.loader.exec_module(after_serverless)


class FunctionGraphStub:
    """The FunctionGraph v2 calls the script makes, for one function, on loopback. Unsigned or wrongly signed
    requests get 401 as API Gateway would answer them; every accepted request is logged."""

    def __init__(self, user_data: dict[str, str]) -> None:
        self.user_data = user_data
        self.max_instance_num: Any = None  # FunctionGraph's default (400) until set
        self.async_config: dict[str, Any] = {}
        self.triggers: list[dict[str, Any]] = []
        self.log: list[tuple[str, str, Any]] = []
        self.rejected: list[str] = []
        self._next_id = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                try:
                    verify(method=self.command, raw_path=parts.path, raw_query=parts.query,
                           headers={k.lower(): v for k, v in self.headers.items()}, body=raw, credentials={AK: SK})
                except SignatureError as exc:
                    stub.rejected.append(str(exc))
                    return self._send(401, {"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication"})
                body = json.loads(raw) if raw else None
                status, answer = stub.route(self.command, unquote(parts.path), body)
                self._send(status, answer)

            def _send(self, status: int, answer: Any) -> None:
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.log.append((method, path, body))
        prefix = f"/v2/{PROJECT}/fgs/"
        if not path.startswith(prefix):
            return 404, {"error_code": "FSS.0404", "error_msg": f"no route {path}"}
        rest = path[len(prefix):]
        for urn in (f"{FUNCTION_URN}:latest", FUNCTION_URN):
            if rest == f"functions/{urn}/config" and method == "GET":
                return 200, {"func_urn": f"{FUNCTION_URN}:latest", "func_name": "dcs-maintenance",
                             "user_data": json.dumps(self.user_data), "runtime": "Python3.10"}
            if rest == f"functions/{urn}/config-max-instance" and method == "PUT":
                assert set(body) == {"max_instance_num"} and isinstance(body["max_instance_num"], int)
                self.max_instance_num = body["max_instance_num"]
                return 200, {"func_urn": urn}
            if rest == f"functions/{urn}/async-invoke-config" and method == "PUT":
                self.async_config = body
                return 200, body
            if rest == f"triggers/{urn}" and method == "GET":
                return 200, self.triggers
            if rest == f"triggers/{urn}" and method == "POST":
                assert body["trigger_type_code"] == "TIMER" and set(body["event_data"]) <= {
                    "name", "schedule_type", "schedule", "user_event"}
                self._next_id += 1
                trigger = {"trigger_id": f"t-{self._next_id}", "trigger_type_code": body["trigger_type_code"],
                           "trigger_status": body.get("trigger_status", "ACTIVE"), "event_data": body["event_data"]}
                self.triggers.append(trigger)
                return 201, trigger
            if rest.startswith(f"triggers/{urn}/") and method == "DELETE":
                type_code, trigger_id = rest[len(f"triggers/{urn}/"):].split("/")
                before = len(self.triggers)
                self.triggers = [t for t in self.triggers if t["trigger_id"] != trigger_id]
                return (204, None) if len(self.triggers) < before else (404, {"error_code": "FSS.1053",
                                                                           "error_msg": "no trigger"})
        return 404, {"error_code": "FSS.1051", "error_msg": "Not found the function"}

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p.rsplit("/", 1)[-1] if m != "DELETE" else "DELETE") for m, p, _ in self.log if m != "GET"]

    def timers(self) -> list[dict[str, Any]]:
        return [t for t in self.triggers if t["trigger_type_code"] == "TIMER"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serverless_user_data() -> dict[str, str]:
    """serverless.yml's environment, `${env:X, 'default'}` / `${opt:x, 'default'}` resolved to their defaults."""
    doc = yaml.safe_load((ROOT / "serverless.yml").read_text())
    out = {}
    for key, value in doc["provider"]["environment"]["variables"].items():
        text = str(value)
        if text.startswith("${"):
            text = text.split(",", 1)[1].strip().strip("}").strip().strip("'")
        out[key] = text
    return out


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", AK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SK)
    fg = FunctionGraphStub(serverless_user_data())
    yield fg
    fg.close()


def run(stub: FunctionGraphStub, *extra: str, capsys=None) -> tuple[int, dict]:
    code = after_serverless.main(["--endpoint", stub.url, "--project-id", PROJECT, "--region", REGION, "--json",
                                  *extra])
    out = capsys.readouterr().out if capsys else "{}"
    return code, json.loads(out)


def test_first_run_caps_the_function_then_creates_the_cron_timer(stub, capsys):
    code, result = run(stub, capsys=capsys)
    assert code == 0 and result["ok"] is True, result
    assert stub.max_instance_num == 1
    assert stub.async_config == {"max_async_event_age_in_seconds": 3600, "max_async_retry_attempts": 0}
    [timer] = stub.timers()
    assert timer["trigger_status"] == "ACTIVE"
    assert timer["event_data"] == {"name": "dcs-maintenance-tick", "schedule_type": "Cron",
                                   "schedule": "0 0/5 * * * ?", "user_event": ""}
    # the cap is in place before the timer can fire
    assert stub.writes() == [("PUT", "config-max-instance"), ("PUT", "async-invoke-config"),
                             ("POST", FUNCTION_URN + ":latest")]
    assert stub.rejected == []


def test_a_second_run_changes_no_trigger(stub, capsys):
    run(stub, capsys=capsys)
    [before] = stub.timers()
    code, result = run(stub, capsys=capsys)
    assert code == 0 and stub.timers() == [before]
    assert [m for m, _ in stub.writes()].count("POST") == 1 and ("DELETE", "DELETE") not in stub.writes()
    assert any("already fires" in line for line in result["done"])


def test_a_rate_timer_or_an_old_period_is_replaced_and_other_timers_are_reported(stub, capsys):
    stub.triggers = [
        {"trigger_id": "old-rate", "trigger_type_code": "TIMER", "trigger_status": "ACTIVE",
         "event_data": {"name": "dcs-maintenance-tick", "schedule_type": "Rate", "schedule": "5m", "user_event": ""}},
        {"trigger_id": "old-period", "trigger_type_code": "TIMER", "trigger_status": "DISABLED",
         "event_data": {"name": "dcs-maintenance-tick", "schedule_type": "Cron", "schedule": "0 0/5 * * * ?"}},
        {"trigger_id": "observer", "trigger_type_code": "TIMER", "trigger_status": "ACTIVE",
         "event_data": {"name": "dry-run-observer", "schedule_type": "Cron", "schedule": "0 0/5 * * * ?",
                        "user_event": '{"dry_run": true}'}},
        {"trigger_id": "api", "trigger_type_code": "DEDICATEDGATEWAY", "trigger_status": "ACTIVE",
         "event_data": {"name": "dcs_maintenance_api"}},
    ]
    stub.user_data["TICK_PERIOD"] = "15m"
    code, result = run(stub, capsys=capsys)
    assert code == 0, result
    assert sorted(t["trigger_id"] for t in stub.triggers) == ["api", "observer", "t-1"]
    new = next(t for t in stub.triggers if t["trigger_id"] == "t-1")
    assert new["event_data"]["schedule"] == "0 0/15 * * * ?" and new["event_data"]["schedule_type"] == "Cron"
    assert any("dry-run-observer" in w for w in result["warnings"])


@pytest.mark.parametrize(("user_data", "why"), [
    ({"MAX_INSTANCE_NUM": "4"}, "MAX_INSTANCE_NUM=4 allows 4 concurrent instances"),
    ({"TICK_PERIOD": "7m"}, "TICK_PERIOD"),
    ({"MAX_INSTANCE_NUM": "0"}, "MAX_INSTANCE_NUM"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
])
def test_settings_the_function_would_refuse_change_nothing(stub, capsys, user_data, why):
    stub.user_data.update(user_data)
    code, result = run(stub, capsys=capsys)
    assert code == 1 and result["ok"] is False
    assert any(why in e for e in result["errors"]), result["errors"]
    assert stub.writes() == [] and stub.max_instance_num is None


def test_a_redis_ledger_allows_a_higher_cap(stub, capsys):
    stub.user_data.update(MAX_INSTANCE_NUM="4", LEDGER_URL="redis://10.0.0.5:6379/0")
    code, _ = run(stub, capsys=capsys)
    assert code == 0 and stub.max_instance_num == 4


def test_a_ledger_in_encrypted_user_data_is_warned_about_not_refused(stub, capsys):
    del stub.user_data["LEDGER_URL"]
    stub.user_data["MAX_INSTANCE_NUM"] = "4"
    code, result = run(stub, capsys=capsys)
    assert code == 0 and stub.max_instance_num == 4
    assert any("encrypted user data" in w for w in result["warnings"])


def test_dry_run_reads_only(stub, capsys):
    code, result = run(stub, "--dry-run", capsys=capsys)
    assert code == 0 and stub.writes() == [] and stub.timers() == []
    assert any("would create TIMER" in line for line in result["done"])


def test_requests_are_signed_with_the_given_keys(stub, capsys, monkeypatch):
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "not-the-secret")
    code, result = run(stub, capsys=capsys)
    assert code == 1 and stub.rejected and stub.log == []
    assert any("401" in e or "APIGW.0301" in e for e in result["errors"]), result["errors"]
    assert "not-the-secret" not in json.dumps(result)


def test_credentials_from_the_plugins_ini_file(stub, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("HUAWEICLOUD_SDK_AK")
    monkeypatch.delenv("HUAWEICLOUD_SDK_SK")
    ini = tmp_path / "credentials"
    ini.write_text(f"access_key_id={AK}\nsecret_access_key={SK}\n")
    code, _ = run(stub, "--credentials", str(ini), capsys=capsys)
    assert code == 0 and stub.rejected == [] and len(stub.timers()) == 1

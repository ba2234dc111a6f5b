"""The emulator's faults for bad days (issue 10), through the official SDK: what each looks like to the client.

A 429 after the request took effect, an answer garbled after the request was processed (an SSL error while
reading, over TLS), a held answer (another invocation runs meanwhile), and refused connections (nothing of the
request was written).
"""

from __future__ import annotations

import threading

import pytest
from conftest import AK, PROJECT, SK

from dcs_emulator import Emulator, Fault


def client(emu: Emulator, monkeypatch: pytest.MonkeyPatch):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkdcs.v2 import DcsClient

    if emu.ca_file:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_file)
    config = HttpConfig.get_default_config()
    config.timeout = (2, 5)
    config.retry_times = 0
    return (DcsClient.new_builder().with_credentials(BasicCredentials(AK, SK, PROJECT)).with_http_config(config)
            .with_endpoints([emu.url]).build())


def restart(dcs, *ids: str):
    from huaweicloudsdkdcs.v2 import ChangeInstanceStatusBody, RestartOrFlushInstancesRequest

    body = ChangeInstanceStatusBody(instances=list(ids), action="restart")
    return dcs.restart_or_flush_instances(RestartOrFlushInstancesRequest(body=body))


@pytest.fixture
def emu():
    with Emulator(ak=AK, sk=SK, projects=[PROJECT], transition_delay=60.0) as emu:
        emu.add_instance(PROJECT, instance_id="i-a", name="a")
        yield emu


def test_throttle_after_acts_then_answers_429(emu, monkeypatch):
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

    emu.inject(Fault(endpoint="status", kind="throttle_after", retry_after=3))
    with pytest.raises(ClientRequestException) as caught:
        restart(client(emu, monkeypatch), "i-a")
    assert caught.value.status_code == 429
    assert emu.get_instance(PROJECT, "i-a")["status"] == "RESTARTING"
    assert emu.get_instance(PROJECT, "i-a")["counters"]["restarts"] == 1


def test_corrupt_after_over_tls_is_an_ssl_error_after_the_action(monkeypatch):
    from huaweicloudsdkcore.exceptions.exceptions import SslHandShakeException

    with Emulator(ak=AK, sk=SK, projects=[PROJECT], transition_delay=60.0, tls=True) as tls:
        tls.add_instance(PROJECT, instance_id="i-a", name="a")
        dcs = client(tls, monkeypatch)
        assert tls.url.startswith("https://")
        assert [r.result for r in restart(dcs, "i-a").results] == ["success"]  # TLS works end to end
        tls.set_status(PROJECT, "i-a", "RUNNING")
        tls.inject(Fault(endpoint="status", kind="corrupt_after"))
        with pytest.raises(SslHandShakeException):
            restart(dcs, "i-a")
        assert tls.get_instance(PROJECT, "i-a")["counters"]["restarts"] == 2


def test_a_held_answer_waits_for_release_and_before_means_nothing_happened_yet(emu, monkeypatch):
    dcs = client(emu, monkeypatch)
    held = emu.hold("status", before=True)
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", restart(dcs, "i-a")))
    thread.start()
    assert held.wait_reached()
    assert emu.get_instance(PROJECT, "i-a")["status"] == "RUNNING"  # held before it was processed
    held.release()
    thread.join(10)
    assert [r.result for r in box["r"].results] == ["success"]
    emu.set_status(PROJECT, "i-a", "RUNNING")
    after = emu.hold("status")
    thread = threading.Thread(target=lambda: restart(dcs, "i-a"))
    thread.start()
    assert after.wait_reached()
    assert emu.get_instance(PROJECT, "i-a")["status"] == "RESTARTING"  # processed; only the answer waits
    after.release()
    thread.join(10)


def test_refused_connections_fail_before_sending_and_come_back(emu, monkeypatch):
    from huaweicloudsdkcore.exceptions.exceptions import ConnectionException

    dcs = client(emu, monkeypatch)
    assert [r.result for r in restart(dcs, "i-a").results] == ["success"]  # a pooled keep-alive connection now
    emu.set_status(PROJECT, "i-a", "RUNNING")
    emu.refuse_connections()
    with pytest.raises(ConnectionException) as caught:
        restart(dcs, "i-a")
    assert "refused" in str(caught.value).lower() or "Failed to establish" in str(caught.value)
    emu.accept_connections()
    assert [r.result for r in restart(dcs, "i-a").results] == ["success"]
    assert emu.get_instance(PROJECT, "i-a")["counters"]["restarts"] == 2


def list_page(dcs, offset: int, limit: int = 1000):
    from huaweicloudsdkdcs.v2 import ListInstancesRequest

    return dcs.list_instances(ListInstancesRequest(offset=offset, limit=limit))


def test_overcount_inflates_the_total_only_and_only_on_lists(emu, monkeypatch):
    """kills: api.py's overcount branch dropped (instance_num stays 1), or `+=` -> `=` (it would be 5)."""
    dcs = client(emu, monkeypatch)
    emu.inject(Fault(endpoint="list", kind="overcount", extra=5, times=2))
    first = list_page(dcs, 0)
    assert (first.instance_num, [i.instance_id for i in first.instances]) == (6, ["i-a"])
    empty = list_page(dcs, 1)  # past the real end: an empty page, still over-counted
    assert (empty.instance_num, empty.instances) == (6, [])
    assert list_page(dcs, 0).instance_num == 1  # used up
    with pytest.raises(ValueError, match="list endpoint only"):
        Fault(endpoint="status", kind="overcount")


def test_refuse_after_answers_then_refuses_the_next_request_until_accepting_again(emu, monkeypatch):
    """The answer it rides on arrives; the next request (here the status PUT) is refused before a byte of it was
    written, so nothing happened; after accept_connections() the same client works again.
    kills: server.py `if reply.refuse:` branch dropped (the PUT would go through: 200, restarts == 1)."""
    from huaweicloudsdkcore.exceptions.exceptions import ConnectionException

    dcs = client(emu, monkeypatch)
    emu.inject(Fault(endpoint="list", kind="refuse_after"))
    assert [i.instance_id for i in list_page(dcs, 0).instances] == ["i-a"]  # answered
    with pytest.raises(ConnectionException) as caught:
        restart(dcs, "i-a")
    assert "Connection refused" in str(caught.value) or "Failed to establish" in str(caught.value)
    assert emu.get_instance(PROJECT, "i-a")["counters"]["restarts"] == 0
    assert [r["method"] for r in emu.requests] == ["GET"]  # the PUT never reached the emulator
    emu.accept_connections()
    assert [r.result for r in restart(dcs, "i-a").results] == ["success"]
    assert emu.get_instance(PROJECT, "i-a")["counters"]["restarts"] == 1

"""The real server on the cluster store: ``signalite serve --store postgresql://…`` driven by boto3.

Each test gets its own PostgreSQL schema (``?schema=…``, dropped at the end of the session); the
PostgreSQL tests are skipped, with the reason, only when no PostgreSQL server is reachable.
"""

from __future__ import annotations

import threading

import pytest

from signalite.store.postgres import parse_url
from tests.integration.pg import POSTGRES_URL, execute, postgres_proxy, postgres_schemas, postgres_url, with_port  # noqa: F401 - fixtures
from tests.support.server import ACCOUNT, Server, refused_port
from tests.support.wait import eventually


def rows_in_postgres(store_url: str) -> list[str]:
    schema = parse_url(store_url)[1]
    result = execute(POSTGRES_URL, f'SELECT name FROM "{schema}".signalite_resources ORDER BY name')[0]
    return [r["name"] for r in result]  # type: ignore[union-attr]


def test_channel_lifecycle_on_postgres(make_server, postgres_url, name):
    server = make_server("--store", postgres_url)
    kv = server.boto()
    arn = kv.create_signaling_channel(
        ChannelName=name, SingleMasterConfiguration={"MessageTtlSeconds": 30},
        Tags=[{"Key": "team", "Value": "video"}])["ChannelARN"]
    assert arn.startswith(f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/{name}/")
    other = kv.create_signaling_channel(ChannelName=name + "_b")["ChannelARN"]
    with pytest.raises(kv.exceptions.ResourceInUseException):
        kv.create_signaling_channel(ChannelName=name)

    # The records live in PostgreSQL, and nowhere else.
    assert rows_in_postgres(postgres_url) == [name, name + "_b"]
    assert not (server.data_dir / "signalite.db").exists()

    info = kv.describe_signaling_channel(ChannelName=name)["ChannelInfo"]
    assert (info["ChannelARN"], info["ChannelStatus"]) == (arn, "ACTIVE")
    assert info["SingleMasterConfiguration"] == {"MessageTtlSeconds": 30}
    assert kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"] == info

    listed = kv.list_signaling_channels(
        ChannelNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": name})["ChannelInfoList"]
    assert [c["ChannelName"] for c in listed] == [name, name + "_b"]
    page1 = kv.list_signaling_channels(
        MaxResults=1, ChannelNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": name})
    page2 = kv.list_signaling_channels(
        MaxResults=1, NextToken=page1["NextToken"],
        ChannelNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": name})
    assert [c["ChannelName"] for c in page1["ChannelInfoList"] + page2["ChannelInfoList"]] == [name, name + "_b"]

    kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=info["Version"],
                                SingleMasterConfiguration={"MessageTtlSeconds": 90})
    updated = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    assert updated["SingleMasterConfiguration"] == {"MessageTtlSeconds": 90}
    assert updated["Version"] != info["Version"]
    with pytest.raises(kv.exceptions.VersionMismatchException):
        kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=info["Version"],
                                    SingleMasterConfiguration={"MessageTtlSeconds": 10})
    with pytest.raises(kv.exceptions.VersionMismatchException):
        kv.delete_signaling_channel(ChannelARN=arn, CurrentVersion=info["Version"])
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "video"}

    kv.delete_signaling_channel(ChannelARN=arn, CurrentVersion=updated["Version"])
    kv.delete_signaling_channel(ChannelARN=other)
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_signaling_channel(ChannelARN=arn)
    assert rows_in_postgres(postgres_url) == []


def test_channels_survive_a_restart(make_server, postgres_url, name):
    server = make_server("--store", postgres_url)
    arn = server.boto().create_signaling_channel(ChannelName=name)["ChannelARN"]
    server.restart()
    info = server.boto().describe_signaling_channel(ChannelName=name)["ChannelInfo"]
    assert info["ChannelARN"] == arn


def test_two_nodes_on_one_database_share_channels(make_server, postgres_url, name):
    a = make_server("--store", postgres_url)
    b = make_server("--store", postgres_url)
    kv_a, kv_b = a.boto(), b.boto()
    arn = kv_a.create_signaling_channel(ChannelName=name)["ChannelARN"]

    info = kv_b.describe_signaling_channel(ChannelName=name)["ChannelInfo"]
    assert info["ChannelARN"] == arn
    assert [c["ChannelName"] for c in kv_b.list_signaling_channels()["ChannelInfoList"]] == [name]
    with pytest.raises(kv_b.exceptions.ResourceInUseException):
        kv_b.create_signaling_channel(ChannelName=name)

    kv_b.update_signaling_channel(ChannelARN=arn, CurrentVersion=info["Version"],
                                  SingleMasterConfiguration={"MessageTtlSeconds": 120})
    seen_by_a = kv_a.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    assert seen_by_a["SingleMasterConfiguration"] == {"MessageTtlSeconds": 120}
    with pytest.raises(kv_a.exceptions.VersionMismatchException):  # a's old version is stale now
        kv_a.update_signaling_channel(ChannelARN=arn, CurrentVersion=info["Version"],
                                      SingleMasterConfiguration={"MessageTtlSeconds": 5})

    kv_a.delete_signaling_channel(ChannelARN=arn)
    with pytest.raises(kv_b.exceptions.ResourceNotFoundException):
        kv_b.describe_signaling_channel(ChannelARN=arn)


def test_concurrent_creates_of_one_name_on_two_nodes_exactly_one_wins(make_server, postgres_url, name):
    nodes = [make_server("--store", postgres_url), make_server("--store", postgres_url)]
    clients = [n.boto() for n in nodes for _ in range(4)]
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(clients))

    def create(kv) -> None:
        start.wait()
        try:
            kv.create_signaling_channel(ChannelName=name)
            result = "created"
        except kv.exceptions.ResourceInUseException:
            result = "in use"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=create, args=(kv,)) for kv in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created"] + ["in use"] * (len(clients) - 1)
    assert rows_in_postgres(postgres_url) == [name]


def test_ready_reports_the_store(make_server, postgres_url):
    server = make_server("--store", postgres_url)
    status, body = server.ready()
    assert status == 200
    assert body["status"] == "ready" and body["store"] == "ok"


def test_serve_fails_fast_with_a_clear_message_when_postgres_is_unreachable(tmp_path, postgres_schemas):
    with refused_port() as port:
        closed = with_port("postgresql://signalite:hunter2@127.0.0.1/signalite", port)
        server = Server(data_dir=tmp_path / "srv", args=["--store", closed])
        with pytest.raises(RuntimeError, match="server exited with 1"):
            server.start()
    log = server.log()
    assert "signalite: cannot connect to the PostgreSQL store postgresql://signalite:***@127.0.0.1:" in log
    assert "Connection refused" in log or "ConnectionRefusedError" in log
    assert "hunter2" not in log
    assert "Traceback" not in log


def _wait_ready(server: Server) -> tuple[int, dict]:
    """Readiness after the database is back: the pool reconnects on the next use."""
    eventually(lambda: server.ready()[0] == 200, what=lambda: f"/ready recovering (now {server.ready()})",
               interval=0.1)
    return server.ready()


def test_ready_answers_503_while_postgres_is_unreachable_and_recovers(make_server, postgres_url, postgres_proxy, name):
    server = make_server("--store", with_port(postgres_url, postgres_proxy.port))
    kv = server.boto()
    kv.create_signaling_channel(ChannelName=name)
    assert server.ready()[0] == 200

    postgres_proxy.stop()  # the database goes away: every connection cut, new ones refused
    status, body = server.ready()
    assert status == 503
    assert body["status"] == "not ready" and body["store"].startswith("error: PostgreSQL unreachable")
    with pytest.raises(kv.exceptions.ClientError) as info:  # operations fail in the AWS form, not hang
        kv.describe_signaling_channel(ChannelName=name)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 500

    postgres_proxy.start()
    assert _wait_ready(server)[0] == 200
    assert kv.describe_signaling_channel(ChannelName=name)["ChannelInfo"]["ChannelName"] == name


def test_ready_answers_503_rather_than_hanging_when_postgres_stops_answering(make_server, postgres_url, postgres_proxy):
    server = make_server("--store", with_port(postgres_url, postgres_proxy.port))
    assert server.ready()[0] == 200
    postgres_proxy.freeze()  # connections stay open, nothing comes back
    try:
        status, body = server.ready()
        assert status == 503
        assert body["store"].startswith("error: PostgreSQL unreachable")
    finally:
        postgres_proxy.thaw()
    assert _wait_ready(server)[0] == 200


def test_serve_refuses_a_malformed_store_url_with_a_clear_message(tmp_path):
    server = Server(data_dir=tmp_path / "srv", args=["--store", "postgresql://db/app?schema=not-an-identifier"])
    with pytest.raises(RuntimeError, match="server exited with 1"):
        server.start()
    assert "signalite: invalid schema name 'not-an-identifier' in the store URL" in server.log()
    assert "Traceback" not in server.log()


def _together(calls) -> list[str]:
    """Run the calls at once from threads; each outcome is "ok" or the error code."""
    start = threading.Barrier(len(calls))
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(call) -> None:
        start.wait()
        try:
            call()
            result = "ok"
        except Exception as exc:  # botocore ClientError: keep the AWS error code
            result = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_tag_writes_on_two_nodes_lose_nothing(make_server, postgres_url, name):
    nodes = [make_server("--store", postgres_url), make_server("--store", postgres_url)]
    arn = nodes[0].boto().create_signaling_channel(ChannelName=name)["ChannelARN"]
    version = nodes[0].boto().describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
    # Five writers: common.update() re-reads and retries up to 5 times, and each round one
    # writer gets through, so all five must succeed (a sixth may get ClientLimitExceeded).
    clients = [n.boto() for n in nodes for _ in range(3)][:5]
    outcomes = _together([
        (lambda kv=kv, i=i: kv.tag_resource(ResourceARN=arn, Tags=[{"Key": f"k{i:02d}", "Value": "v"}]))
        for i, kv in enumerate(clients)])
    assert outcomes == ["ok"] * len(clients)
    tags = nodes[1].boto().list_tags_for_resource(ResourceARN=arn)["Tags"]
    assert tags == {f"k{i:02d}": "v" for i in range(len(clients))}
    assert nodes[1].boto().describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"] == version


def test_an_update_racing_tag_writes_succeeds_and_keeps_them(make_server, postgres_url, name):
    nodes = [make_server("--store", postgres_url), make_server("--store", postgres_url)]
    arn = nodes[0].boto().create_signaling_channel(ChannelName=name)["ChannelARN"]
    version = nodes[0].boto().describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
    clients = [n.boto() for n in nodes for _ in range(3)][:5]  # five writers (see above)
    calls = [(lambda kv=kv, i=i: kv.tag_resource(ResourceARN=arn, Tags=[{"Key": f"k{i}", "Value": "v"}]))
             for i, kv in enumerate(clients[1:])]
    calls.append(lambda: clients[0].update_signaling_channel(
        ChannelARN=arn, CurrentVersion=version, SingleMasterConfiguration={"MessageTtlSeconds": 77}))
    assert _together(calls) == ["ok"] * len(calls)  # a tag write in between is not a version mismatch
    info = nodes[1].boto().describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    assert info["SingleMasterConfiguration"] == {"MessageTtlSeconds": 77}
    assert len(nodes[1].boto().list_tags_for_resource(ResourceARN=arn)["Tags"]) == len(calls) - 1


def test_the_channel_limit_holds_when_two_nodes_create_at_once(make_server, postgres_url, name):
    nodes = [make_server("--store", postgres_url, "--channels-per-account", "3") for _ in range(2)]
    clients = [n.boto() for n in nodes for _ in range(5)]
    outcomes = _together([(lambda kv=kv, i=i: kv.create_signaling_channel(ChannelName=f"{name}-{i}"))
                          for i, kv in enumerate(clients)])
    assert sorted(outcomes) == ["AccountChannelLimitExceededException"] * 7 + ["ok"] * 3
    assert len(rows_in_postgres(postgres_url)) == 3

"""The PostgreSQL ledger against a real server (tests/pg_server.py; skipped when none can
run here): rows come back as they went in, a failed insert leaves nothing behind, a
server that refuses, is missing or goes away is a ConfigError or a logged, counted write
failure, and its password is in no error and no log."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from structlog.testing import capture_logs

from cascade.core.errors import ConfigError
from cascade.core.values import Attempt, Outcome, Result, Usage
from cascade.live import postgres
from cascade.live.postgres import PostgresStore
from cascade.live.rows import TABLES, Row, result_rows, row_dict
from cascade.live.urls import safe_url
from cascade.live.writer import LedgerWriter
from tests.pg_server import PASSWORD, Cluster, Servers, free_port, session_servers

SECRETS = (PASSWORD, quote(PASSWORD, safe=""))
TINY = "0.000000123456789012345678901"  # more digits than a float keeps
TAGS = {"team": "søk", "note": 'it\'s "quoted"'}


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    yield from session_servers()


@pytest.fixture
def pg(servers: Servers) -> Cluster:
    return servers.clusters[0]


@pytest.fixture
def url(pg: Cluster) -> str:
    return pg.url(pg.new_database())


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(url)
    yield opened
    opened.close()


def assert_no_password(text: Any) -> None:
    shown = text if isinstance(text, str) else json.dumps(text, default=str)
    for secret in SECRETS:
        assert secret not in shown


def every_table(request_id: str, ts: float) -> list[Row]:
    """One row of each table, with the awkward values: exact money, None, flags, big ints."""
    day = time.strftime("%Y-%m-%d", time.gmtime(ts))
    tags = json.dumps(TAGS, sort_keys=True, ensure_ascii=False)
    return [
        Row.of("results", request_id=request_id, ts=ts, day=day, config="c.yaml", tier="small", model="m-1",
               verified=True, stop_reason="accepted", cache=None, path="small>large", attempts=2,
               escalated=True, fell_back=False, total_usd=TINY, wasted_usd="0", verification_usd="1E-12",
               baseline_usd="12345678901234567890.5", saved_usd=None, latency_s=0.25, tags=tags,
               route_tier="large", route_by="rule 2", routing_usd="0.000003"),
        Row.of("attempts", request_id=request_id, ts=ts, n=0, tier="small", model="m-1", outcome="rejected",
               cost_usd="0.00002", verification_usd=None, input_tokens=2**40, output_tokens=0,
               latency_s=1.5, queued_s=0.0, error_code=None),
        Row.of("audits", request_id=request_id, ts=ts, day=day, config="c.yaml", tier="small", model="m-1",
               against="top", agreed=False, audit_usd="0.01", tags="{}", pair='{"a": "x"}', error=None),
        Row.of("shadows", request_id=request_id, ts=ts, day=day, candidate="d.yaml", live_tier="small",
               live_verified=True, live_usd="0.3", shadow_tier=None, shadow_verified=False, shadow_usd=None,
               agreed=None, tags=tags, error="timeout"),
        Row.of("alarms", ts=ts, config="c.yaml", tier="small", grp="team=søk", kind="false_accept",
               bound=0.0731, audited=500, disagreements=12),
    ]  # fmt: skip


def one_result(request_id: str) -> list[Row]:
    attempts = (
        Attempt("small", "m-1", Outcome.REJECTED, Usage(10, 5), Decimal("0.000001"), latency_s=0.1),
        Attempt("large", "m-2", Outcome.ACCEPTED, Usage(10, 7), Decimal("0.00042"), latency_s=0.3),
    )
    result: Result[Any] = Result(
        "answer", True, attempts, 1, Decimal("0.0009"), request_id=request_id, tags={"team": "a"}
    )
    return result_rows(result, config="c.yaml", latency_s=0.5, ts=time.time())


def test_rows_of_every_table_come_back_as_they_went_in(store: PostgresStore) -> None:
    rows = every_table("r-1", 1_765_000_000.123456)
    store.insert(rows)
    for row in rows:
        assert store.select(row.table) == [row_dict(row.table, row.values)]
    result = store.select("results")[0]
    assert result["total_usd"] == Decimal(TINY) and f"{result['total_usd']:f}" == TINY
    assert result["verified"] is True and result["fell_back"] is False and result["saved_usd"] is None
    assert result["ts"] == 1_765_000_000.123456 and result["tags"] == TAGS
    attempt = store.select("attempts")[0]
    assert type(attempt["input_tokens"]) is int and attempt["input_tokens"] == 2**40
    assert store.select("shadows")[0]["agreed"] is None


def test_a_results_rows_fit_the_tables(store: PostgresStore) -> None:
    rows = one_result("r-2")
    store.insert(rows)
    [result] = store.select("results")
    assert result == row_dict("results", rows[0].values)
    assert result["path"] == "small>large" and result["escalated"] is True and result["tags"] == {"team": "a"}
    assert [a["n"] for a in store.select("attempts")] == [0, 1]


def test_select_since_a_time_oldest_first(store: PostgresStore) -> None:
    store.insert([r for ts in (300.0, 100.0, 200.0) for r in every_table(f"at-{ts:g}", ts)])
    for table in TABLES:
        assert [r["ts"] for r in store.select(table)] == [100.0, 200.0, 300.0]
        assert [r["ts"] for r in store.select(table, since=200.0)] == [200.0, 300.0]
    assert store.select("results", since=301.0) == []
    with pytest.raises(ValueError, match="no table"):
        store.select("results; DROP TABLE results")


@pytest.mark.parametrize(
    "bad",
    [
        {"table": "attempts", "n": "many"},  # not an integer: the results row before it goes too
        {"table": "results", "attempts": 2**70},  # out of BIGINT: the results row before it goes too
    ],
)
def test_a_failed_insert_leaves_no_row_of_it(store: PostgresStore, bad: dict[str, Any]) -> None:
    import psycopg

    rows = one_result("torn")
    table = bad.pop("table")
    good = next(r for r in rows if r.table == table)
    values = dict(zip(TABLES[table], good.values, strict=True))
    with pytest.raises(psycopg.DataError):
        store.insert([*rows, Row.of(table, **{**values, **bad})])
    assert store.select("results") == [] and store.select("attempts") == []
    store.insert(rows)  # the store goes on after the rollback
    assert len(store.select("attempts")) == 2


def test_a_ledger_from_before_a_table_existed_reads_it_empty(pg: Cluster, url: str) -> None:
    db = url.rsplit("/", 1)[1]
    PostgresStore(url).close()
    pg.admin("DROP TABLE alarms", db=db)
    opened = PostgresStore(url, create=False)
    assert opened.select("alarms") == []
    opened.insert(one_result("after"))
    assert len(opened.select("results")) == 1
    opened.close()


def test_create_false_refuses_a_database_that_is_no_ledger(pg: Cluster, url: str) -> None:
    with pytest.raises(ConfigError, match="not a cascade ledger") as refused:
        PostgresStore(url, create=False)
    assert safe_url(url) in str(refused.value) and f"127.0.0.1:{pg.port}/" in str(refused.value)
    assert_no_password(str(refused.value))
    PostgresStore(url).close()  # made a ledger, it opens
    PostgresStore(url, create=False).close()


def test_a_wrong_password_is_refused_and_neither_password_shown(pg: Cluster, url: str) -> None:
    wrong = "Wr0ng-Pa55word!"
    bad = pg.url(url.rsplit("/", 1)[1], password=wrong)
    with pytest.raises(ConfigError, match="password authentication failed") as refused:
        PostgresStore(bad)
    message = str(refused.value)
    assert f"ledger@127.0.0.1:{pg.port}/t_" in message
    assert_no_password(message)
    assert wrong not in message and quote(wrong) not in message


def test_no_server_at_the_port_is_a_config_error_naming_it() -> None:
    port = free_port()
    dead = f"postgresql://ledger:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/ledger"
    started = time.monotonic()
    with pytest.raises(ConfigError, match="cannot connect") as refused:
        PostgresStore(dead)
    assert time.monotonic() - started < 5
    assert f"postgresql://ledger@127.0.0.1:{port}/ledger" in str(refused.value)
    assert_no_password(str(refused.value))


def test_a_server_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_S", 2)  # the least libpq takes
    with socket.socket() as silent:  # the kernel accepts the connection; nobody ever speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ConfigError, match="cannot connect"):
            PostgresStore(f"postgresql://ledger:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/ledger")
        assert time.monotonic() - started < 10


def test_without_psycopg_the_store_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "psycopg", None)
    with pytest.raises(ConfigError, match=r"pip install 'verified-cascade\[postgres\]'") as refused:
        PostgresStore(f"postgresql://ledger:{quote(PASSWORD, safe='')}@db.internal:5432/ledger")
    assert "postgresql://ledger@db.internal:5432/ledger" in str(refused.value)
    assert_no_password(str(refused.value))


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql://u:p%40ss@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql://u:p@ss/w@h/db", "postgresql://u@h/db"),  # an unescaped @ or / in the password
        ("postgres://u@h1:1,h2:2/db?sslmode=require&password=x", "postgres://u@h1:1,h2:2/db?sslmode=require"),
        ("postgresql:///db", "postgresql:///db"),
        ("host=h password='a b' dbname=x", "host=h password=*** dbname=x"),
    ],
)
def test_safe_url_keeps_the_server_and_drops_the_password(given: str, shown: str) -> None:
    assert safe_url(given) == shown


def test_the_writer_commits_rows_put_from_many_threads(url: str) -> None:
    writer = LedgerWriter(lambda: PostgresStore(url), where=safe_url(url))
    try:

        def put_from(thread: int) -> None:
            for i in range(25):
                writer.put(one_result(f"t{thread}-{i}"))

        threads = [threading.Thread(target=put_from, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert writer.flush()
    finally:
        writer.close()
    assert (writer.counts.written, writer.counts.dropped, writer.counts.errors) == (600, 0, 0)
    reader = PostgresStore(url, create=False)
    ids = {r["request_id"] for r in reader.select("results")}
    assert ids == {f"t{t}-{i}" for t in range(8) for i in range(25)}
    assert len(reader.select("attempts")) == 400
    reader.close()


def test_the_writer_logs_and_counts_a_server_that_is_not_there() -> None:
    dead = f"postgresql://ledger:{quote(PASSWORD, safe='')}@127.0.0.1:{free_port()}/ledger"
    with capture_logs() as logs:
        writer = LedgerWriter(lambda: PostgresStore(dead), where=safe_url(dead))
        writer.put(one_result("lost"))
        assert writer.flush()
        writer.close()
    assert [e["event"] for e in logs] == ["ledger_unavailable"]
    assert logs[0]["ledger"] == safe_url(dead) and "cannot connect" in logs[0]["error"]
    assert (writer.counts.written, writer.counts.dropped, writer.counts.errors) == (0, 3, 1)
    assert_no_password(logs)


def test_the_writer_outlives_a_server_stopped_mid_run(servers: Servers) -> None:
    cluster = servers.start_cluster()  # its own server: the others' tests keep theirs
    try:
        url = cluster.url(cluster.new_database())
        with capture_logs() as logs:
            writer = LedgerWriter(lambda: PostgresStore(url), where=safe_url(url))
            writer.put(one_result("before"))
            assert writer.flush()
            cluster.stop()
            writer.put(one_result("during"))  # the open store's write fails: logged, not raised
            assert writer.flush()
            writer.put(one_result("after"))  # opened again, refused: logged, not raised
            assert writer.flush()
            writer.close()
    finally:
        cluster.stop()
    assert [e["event"] for e in logs] == ["ledger_write_failed", "ledger_unavailable"]
    assert all(e["ledger"] == safe_url(url) for e in logs)
    assert (writer.counts.written, writer.counts.dropped, writer.counts.errors) == (3, 6, 2)
    assert_no_password(logs)


def test_the_days_spend_a_budget_reads_is_the_sum_of_its_rows_since_then(store: PostgresStore) -> None:
    rows = every_table("r1", 1_000.0) + every_table("r2", 2_000.0)
    store.insert(rows)
    audits = [dict(zip(TABLES["audits"], r.values, strict=True)) for r in rows if r.table == "audits"]
    later = [Decimal(a["audit_usd"]) for a in audits if a["ts"] >= 1_500.0]
    assert store.total("audits", "audit_usd", 1_500.0) == pytest.approx(float(sum(later)))
    assert store.total("audits", "audit_usd", 9_999.0) == 0.0
    with pytest.raises(ValueError, match="no column"):
        store.total("audits", "nope", 0.0)


def test_a_ledger_from_before_routing_reads_with_create_false_its_route_columns_empty(
    pg: Cluster, url: str
) -> None:
    """A reader that only opens the ledger (`cascade report --ledger`, perhaps as a role that may
    not alter it) reads one made before the route columns: they read as empty."""
    from cascade.live.rows import ADDED_COLUMNS

    db = url.rsplit("/", 1)[1]
    PostgresStore(url).close()
    for column in ADDED_COLUMNS["results"]:
        pg.admin(f"ALTER TABLE results DROP COLUMN {column}", db=db)
    pg.admin("INSERT INTO results (request_id, ts, total_usd, tags) VALUES ('old', 1.0, '0.5', '{}')", db=db)
    opened = PostgresStore(url, create=False)
    try:
        rows = opened.select("results")
    finally:
        opened.close()
    assert [(r["request_id"], r["total_usd"], r["route_tier"], r["routing_usd"]) for r in rows] == [
        ("old", Decimal("0.5"), None, None)
    ]
    PostgresStore(url).close()  # a store that writes gives the ledger its columns
    reopened = PostgresStore(url, create=False)
    reopened.insert(one_result("new"))
    assert [r["request_id"] for r in reopened.select("results")] == ["old", "new"]
    reopened.close()

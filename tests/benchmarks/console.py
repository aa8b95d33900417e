"""Console page latency over a large ledger on PostgreSQL (a private server, as in the tests).

The ledger, the assessor and the console run as their own processes, as deployed: NATS with its
users, the ledger on PostgreSQL, the assessor with a running rollout, and the console alone
(`python -m tierlift.console.main`) reading both over gRPC with an admin key. The ledger's rows
are made inside PostgreSQL (generate_series): attempts over ~90 days, 20 tenants, 12 workloads and
8 models, with escalations, faults and shadow runs; their request rows, daily rollups (spend and
request outcomes) and answer latencies made from them as ingest makes them; judged shadow runs,
feedback, budgets, keys and an audit trail. One client then asks for each page in turn, after a
warm-up, and the latency of each is its whole HTTP exchange (the console's gRPC calls and the
ledger's queries inside it)."""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg

from tests.postgres import postgres_server
from tierlift.console._auth import COOKIE
from tierlift.core import migrations
from tierlift.core.nats_access import BOOTSTRAP
from tierlift.devstack import Stack, base_env, bootstrap_keys, free_port, run_bootstrap, wait_for_port
from tierlift.ledger._keys import KeyStore, key_row
from tierlift.ledger._store import make_engine
from tierlift.v1 import assessor_pb2, assessor_pb2_grpc, ledger_pb2

TENANTS, WORKLOADS, DAYS = 20, 12, 90
ROLLOUT_WORKLOAD, ROLLOUT_REQUESTS = "wl-03", 10_000
# (model, tier, adapter, input and output USD per 1M tokens): a first attempt goes to one of the
# first four, an escalation to one of the last four; the rollout moves index 0 to index 4
MODELS = [
    ("gemma-3-270m-cpu", "LOCAL", "llamacpp-local", "0.05", "0.20"),
    ("llama-3.1-8b-instruct-vllm", "LOCAL", "vllm-local", "0.05", "0.20"),
    ("llama-4-maverick-together", "HOSTED_OPEN", "openai-together", "0.27", "0.85"),
    ("mistral-small-3-mistral", "HOSTED_OPEN", "openai-mistral", "0.10", "0.30"),
    ("gpt-5-mini", "CLOSED", "openai", "0.25", "2.00"),
    ("claude-haiku-4-5", "CLOSED", "anthropic", "1.00", "5.00"),
    ("gpt-5", "FRONTIER", "openai", "1.25", "10.00"),
    ("claude-opus-4-5", "FRONTIER", "anthropic", "5.00", "25.00"),
]
# per request n: a first attempt; an escalation for one in 4 (its first LOW_CONFIDENCE); a shadow
# run for one in 50; a fault (no answer) for one in 97 of the rest
ATTEMPTS_PER_REQUEST = 1 + 1 / 4 + 1 / 50


def _models_sql() -> str:
    rows = ", ".join(
        f"({i}, '{m}', '{t}', '{a}', {int(float(p_in) * 1e12)}, {int(float(p_out) * 1e12)})"
        for i, (m, t, a, p_in, p_out) in enumerate(MODELS)
    )
    return f"CREATE TEMP TABLE bench_models (idx, model, tier, adapter, in_p, out_p) AS VALUES {rows}"


def _attempts_sql(prefix: str, first: int, count: int, t0: datetime, step_s: float, rollout: bool) -> str:
    """Attempt rows of requests `first`..`first + count - 1`, the first at `t0`, `step_s` apart.
    A rollout's requests are one workload's, split between its control (index 0) and candidate."""
    workload = f"'{ROLLOUT_WORKLOAD}'" if rollout else "'wl-' || lpad(mod(n / 20, 12)::text, 2, '0')"
    first_model = "4 * mod(n, 2)" if rollout else "mod(n / 240, 4)"
    escalated = "false" if rollout else "mod(n, 4) = 1"
    shadowed = "false" if rollout else "mod(n, 50) = 7"
    return f"""
    INSERT INTO attempts (event_id, request_id, attempt_index, tenant, workload, tier, model, adapter, outcome,
        input_tokens, output_tokens, cost_usd, input_usd_per_million, output_usd_per_million, price_version,
        latency_ms, confidence, occurred_at, recorded_at, kind)
    SELECT '{prefix}-' || g.n || '-' || g.i, '{prefix}-' || g.n, g.i, g.tenant, g.workload, m.tier, m.model,
        m.adapter, g.outcome, g.inp, g.outp, g.inp * (m.in_p / 1000000) + g.outp * (m.out_p / 1000000), m.in_p,
        m.out_p, 'bench', g.latency, g.confidence, g.at, g.at + interval '1 second', g.kind
    FROM (
        SELECT n, x.i, 'tenant-' || lpad(mod(n, {TENANTS})::text, 2, '0') AS tenant, {workload} AS workload,
            CASE x.i WHEN 0 THEN {first_model} ELSE 4 + mod(n / 240, 4) END AS midx,
            CASE WHEN x.i = 0 AND {escalated} THEN 'LOW_CONFIDENCE'
                 WHEN x.i = 0 AND mod(n, 97) = 0 THEN 'FAULT' ELSE 'ANSWERED' END AS outcome,
            CASE x.i WHEN 9 THEN 'shadow' ELSE 'live' END AS kind,
            200 + mod(n * 37, 1800) AS inp, 50 + mod(n * 13, 600) AS outp,
            100 + mod(n * 31, 3000) + 500 * x.i AS latency, 0.5 + mod(n, 50) / 100.0 AS confidence,
            timestamptz '{t0.isoformat()}' + make_interval(secs => (n - {first}) * {step_s} + 2 * x.i) AS at
        FROM generate_series({first}, {first + count - 1}) AS n
        CROSS JOIN (VALUES (0), (1), (9)) AS x(i)
        WHERE x.i = 0 OR (x.i = 1 AND {escalated}) OR (x.i = 9 AND {shadowed})
    ) AS g JOIN bench_models AS m ON m.idx = g.midx
    """


def _requests_sql(prefix: str, rollout_id: str) -> str:
    """One row per request, made from its live attempts as request ingest would have it: its data
    class, the plan's reasons and ladder (JSON, as ledger/_ingest.py `why` writes them) and a trace id."""
    arm = "CASE min(model) WHEN 'gemma-3-270m-cpu' THEN 'control' ELSE 'candidate' END" if rollout_id else "''"
    return f"""
    INSERT INTO requests (request_id, event_id, tenant, workload, answered, final_tier, final_model, attempt_count,
        escalated, total_cost_usd, occurred_at, error, prompt_sha256, regenerated, rollout_id, arm, data_class,
        reasons, trace_id)
    SELECT request_id, request_id || '.completed', tenant, workload, answered, final_tier, final_model, attempt_count,
        escalated, total_cost_usd, occurred_at, error, prompt_sha256, regenerated, rollout_id, arm, data_class,
        json_build_object('plan', json_build_array('data class ' || data_class), 'ladder', ladder,
                          'excluded', json_build_array(), 'cut', 0)::text, md5(request_id)
    FROM (
        SELECT request_id, min(tenant) AS tenant, min(workload) AS workload,
            bool_or(outcome = 'ANSWERED') AS answered, (array_agg(tier ORDER BY attempt_index DESC))[1] AS final_tier,
            (array_agg(model ORDER BY attempt_index DESC))[1] AS final_model, count(*) AS attempt_count,
            count(*) > 1 AS escalated, sum(cost_usd) AS total_cost_usd, min(occurred_at) AS occurred_at,
            CASE WHEN bool_or(outcome = 'ANSWERED') THEN '' ELSE 'every attempt failed' END AS error,
            md5(request_id) || md5(min(workload)) AS prompt_sha256, mod(hashtext(request_id), 30) = 0 AS regenerated,
            '{rollout_id}' AS rollout_id, {arm} AS arm,
            CASE abs(mod(hashtext(request_id), 20)) WHEN 0 THEN 'REGULATED' WHEN 1 THEN 'CONFIDENTIAL'
                WHEN 2 THEN 'CONFIDENTIAL' WHEN 3 THEN 'INTERNAL' WHEN 4 THEN 'INTERNAL' ELSE 'PUBLIC'
            END AS data_class,
            json_agg(json_build_array(tier, model, 'rung ' || attempt_index) ORDER BY attempt_index) AS ladder
        FROM attempts WHERE kind = 'live' AND event_id LIKE '{prefix}-%'
        GROUP BY request_id
    ) AS r
    """


_ROLLUPS = """
    TRUNCATE daily_spend;
    INSERT INTO daily_spend (day, tenant, workload, tier, model, attempts, input_tokens, output_tokens, cost_usd)
    SELECT (occurred_at AT TIME ZONE 'UTC')::date, tenant, workload, tier, model, count(*), sum(input_tokens),
        sum(output_tokens), sum(cost_usd)
    FROM attempts WHERE kind = 'live' GROUP BY 1, 2, 3, 4, 5;
    TRUNCATE daily_requests;
    INSERT INTO daily_requests (day, tenant, workload, answered, final_tier, final_model, data_class, escalated,
        requests, fell_back)
    SELECT (occurred_at AT TIME ZONE 'UTC')::date, tenant, workload, answered, final_tier, final_model, data_class,
        escalated, count(*), count(*) FILTER (WHERE answered AND EXISTS (SELECT 1 FROM attempts AS a
            WHERE a.request_id = r.request_id AND a.tenant = r.tenant AND a.outcome = 'FAULT' AND a.kind = 'live'))
    FROM requests AS r GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    TRUNCATE answer_latencies;
    INSERT INTO answer_latencies (request_id, event_id, tenant, workload, model, latency_ms, occurred_at)
    SELECT r.request_id, a.event_id, r.tenant, r.workload, a.model, a.latency_ms, r.occurred_at
    FROM requests AS r JOIN attempts AS a ON a.request_id = r.request_id AND a.model = r.final_model
    WHERE r.answered AND a.kind = 'live' AND a.outcome = 'ANSWERED'
"""
# a score for each shadow run, feedback on one request in 200, an audit trail
_QUALITY = """
    INSERT INTO quality_scores (event_id, request_id, tenant, workload, model, reference_model, method, score, source,
        occurred_at)
    SELECT 'score-' || a.event_id, a.request_id, a.tenant, a.workload, r.final_model, a.model, 'normalised',
        0.6 + mod(hashtext(a.event_id), 40) / 100.0, 'shadow', a.occurred_at
    FROM attempts AS a JOIN requests AS r USING (request_id) WHERE a.kind = 'shadow';
    INSERT INTO feedback (event_id, request_id, tenant, rating, regenerated, comment, occurred_at)
    SELECT 'feedback-' || request_id, request_id, tenant, CASE WHEN mod(hashtext(request_id), 3) = 0 THEN -1 ELSE 1
        END, regenerated, '', occurred_at + interval '1 minute'
    FROM requests WHERE mod(hashtext(request_id), 200) = 0;
    INSERT INTO audit (event_id, occurred_at, actor, action, target, detail)
    SELECT 'audit-' || n, now() - make_interval(secs => n * 600), 'admin-key', 'budget.set',
        'tenant-' || lpad(mod(n, 20)::text, 2, '0') || '/*/month', '100 USD, reject'
    FROM generate_series(1, 2000) AS n
"""


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _request_count(attempts: int) -> int:
    """Requests outside the rollout, for about `attempts` attempt rows in all."""
    return int((attempts - ROLLOUT_REQUESTS) / ATTEMPTS_PER_REQUEST)


def _load(url: str, attempts: int, rollout_id: str, rollout_started: datetime) -> dict[str, Any]:
    """`attempts` attempt rows and what goes with them; the rollout's requests from its start on."""
    requests = _request_count(attempts)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(_models_sql())
        step = (DAYS * 86400 - 600) / requests  # the newest ten minutes before now
        conn.execute(_attempts_sql("bench", 0, requests, now - timedelta(days=DAYS), step, rollout=False))
        conn.execute(_attempts_sql("roll", 0, ROLLOUT_REQUESTS, rollout_started, 0.0002, rollout=True))
        conn.execute(_requests_sql("bench", ""))
        conn.execute(_requests_sql("roll", rollout_id))
        conn.execute(_ROLLUPS)
        conn.execute(_QUALITY)
        budgets = [(f"tenant-{t:02d}", period, "reject" if t % 2 else "local_only") for t in range(TENANTS)
                   for period in ("day", "month")]  # fmt: skip
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO budgets (tenant, workload, period, limit_usd, soft_ratio, action, updated_at) "
                "VALUES (%s, '', %s, 500, 0.8, %s, now())",
                budgets,
            )
        conn.execute("ANALYZE")  # the planner's statistics, as autovacuum would have them in production
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in (
                "attempts",
                "requests",
                "daily_spend",
                "daily_requests",
                "answer_latencies",
                "quality_scores",
                "feedback",
                "budgets",
            )
        }
    return {"rows": counts, "load_s": round(time.perf_counter() - started, 1)}


def _add_keys(url: str, n: int) -> None:
    engine = make_engine(url)
    try:
        store = KeyStore(engine)
        for i in range(n):
            role = ("app", "viewer", "finance")[i % 3]
            tenant = f"tenant-{i % TENANTS:02d}" if role != "finance" else ""
            store.create(key_row(ledger_pb2.KeyRequest(tenant=tenant, role=role, description=f"key {i}"),
                                 datetime.now(UTC))[0])  # fmt: skip
    finally:
        engine.dispose()


def _start_services(stack: Stack, url: str) -> None:
    """NATS, the ledger on `url`, the assessor (no router: no LLM judge) and the console."""
    (stack.state_dir / "logs").mkdir(mode=0o700, exist_ok=True)
    stack._start_nats()
    run_bootstrap(stack.nats_url, stack.nats_seeds[BOOTSTRAP], None)
    stack.keys = bootstrap_keys(stack.state_dir, url)
    stack.addrs["router"] = ""  # the assessor's LLM judge: none
    stack.start_service("ledger")
    stack.start_service("assessor")
    port = free_port()
    env = {**base_env(), "TIERLIFT_LEDGER_ADDR": stack.addrs["ledger"], "TIERLIFT_LOG_LEVEL": "warning",
           "TIERLIFT_ASSESSOR_ADDR": stack.addrs["assessor"], "TIERLIFT_HTTP_LISTEN": f"127.0.0.1:{port}",
           "TIERLIFT_CONSOLE_SECRET": stack.console_secret}  # fmt: skip
    with stack.log_path("console").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tierlift.console.main"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    stack.procs["console"] = proc  # stopped with the stack
    wait_for_port(port, 60, proc, "console")
    stack.addrs["console"] = f"127.0.0.1:{port}"


def _start_rollout(stack: Stack) -> tuple[str, datetime]:
    spec = assessor_pb2.RolloutSpec(workload=ROLLOUT_WORKLOAD, from_model=MODELS[0][0], to_model=MODELS[4][0])
    with stack.channel("assessor", stack.keys["admin"]) as channel:
        state = assessor_pb2_grpc.AssessorStub(channel).StartRollout(spec, timeout=30)
    return state.rollout_id, state.stage_started_at.ToDatetime(tzinfo=UTC)


class Client:
    """One browser-like client: a kept-alive connection and the session cookie."""

    def __init__(self, addr: str) -> None:
        host, _, port = addr.rpartition(":")
        self.origin = f"http://{addr}"
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        self.cookie = ""

    def send(self, method: str, path: str, body: str = "", **headers: str) -> tuple[int, str, bytes]:
        headers = {"Cookie": f"{COOKIE}={self.cookie}", **headers} if self.cookie else headers
        self.conn.request(method, path, body=body or None, headers=headers)
        reply = self.conn.getresponse()
        return reply.status, reply.getheader("Location") or "", reply.read()

    def log_in(self, key: str) -> None:
        form = urlencode({"key": key})
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": self.origin}
        self.conn.request("POST", "/console/login", body=form, headers=headers)
        reply = self.conn.getresponse()
        reply.read()
        cookie = reply.getheader("Set-Cookie") or ""
        assert reply.status == 303 and cookie.startswith(f"{COOKIE}="), f"login failed: {reply.status}"
        self.cookie = cookie.split(";", 1)[0].split("=", 1)[1]

    def page(self, path: str) -> None:
        """GET `path`, following a redirect as a browser would; the page must be there."""
        status, location, _body = self.send("GET", path)
        if status in (302, 303) and location.startswith("/console/"):
            status, location, _body = self.send("GET", location)
        assert status == 200, f"GET {path}: {status}"


def _summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def _time_pages(client: Client, pages: dict[str, str], rounds: int, warm: int) -> dict[str, dict[str, float]]:
    """Each page `rounds` times in a row after `warm` unmeasured asks."""
    results = {}
    for name, path in pages.items():
        for _ in range(warm):
            client.page(path)
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            client.page(path)
            timings.append((time.perf_counter() - started) * 1000)
        results[name] = {"path": path, **_summary(timings)}  # type: ignore[dict-item]
    return results


def _pages(request_id: str, rollout_id: str) -> dict[str, str]:
    return {
        "overview_7_days": "/console/",
        "overview_90_days": "/console/?days=90",
        "spend_7_days": "/console/spend",
        "requests_by_tenant_7_days": "/console/requests?tenant=tenant-03",
        "requests_by_request_id": f"/console/requests?{urlencode({'request_id': request_id})}",
        "request_page": f"/console/requests/{request_id}",
        "quality_7_days": "/console/quality",
        "rollout": f"/console/rollouts?id={rollout_id}",
        "keys_and_budgets": "/console/keys",
    }


def bench_console() -> dict[str, object]:
    attempts = int(os.environ.get("BENCH_CONSOLE_ROWS", "1000000"))
    rounds = int(os.environ.get("BENCH_CONSOLE_ROUNDS", "30"))
    with postgres_server() as url, tempfile.TemporaryDirectory() as state:
        migrations.upgrade(url)
        stack = Stack(Path(state), service_extra_env={"ledger": {"TIERLIFT_DATABASE_URL": url}},
                      extra_env={"TIERLIFT_LOG_LEVEL": "warning"})  # fmt: skip
        try:
            _start_services(stack, url)
            rollout_id, rollout_started = _start_rollout(stack)
            loaded = _load(url, attempts, rollout_id, rollout_started)
            _add_keys(url, 200)
            client = Client(stack.addrs["console"])
            client.log_in(stack.keys["admin"])
            request_id = f"bench-{_request_count(attempts) // 8 * 4 + 1}"  # mid-window, escalated: 2 attempts
            pages = _pages(request_id, rollout_id)
            timings = _time_pages(client, pages, rounds, warm=3)
        finally:
            stack.stop()
    return {
        "what": "Console pages over HTTP, one client, sequential, after 3 warm-up asks each: the console alone "
        "reading the ledger (PostgreSQL) and the assessor over gRPC with an admin key. Windows are the pages' "
        "defaults (7 days) unless named.",
        "stored_attempts": loaded["rows"]["attempts"],
        "rows": loaded["rows"],
        "load_s": loaded["load_s"],
        "rounds": rounds,
        "target_p95_ms": 200,
        "pages": timings,
    }

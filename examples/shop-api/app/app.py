"""shop-api: a small Flask service backed by PostgreSQL and Redis.

Run with:  gunicorn --bind 0.0.0.0:$PORT --workers 1 --threads 4 app:app

Configuration comes only from the environment:
  PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD  -- read by libpq/psycopg itself
  REDIS_URL  (default redis://localhost:6379/0)
  LOG_LEVEL  (default info)

No connection is opened at import time: the process starts even when
Postgres or Redis are not reachable yet, and /healthz reports 503 until
both answer.  `/` returns a small JSON index; any other unknown path is a
plain Flask 404 (there is no catch-all route).
"""

import datetime
import json
import logging
import os
import sys
import threading
import time

import psycopg
import redis
from flask import Flask, Response, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

CONNECT_TIMEOUT = 2  # seconds, Postgres connect
SOCKET_TIMEOUT = 2  # seconds, Redis connect + socket
STATEMENT_TIMEOUT_MS = 2000  # health check query bound
COUNTER_KEY = "items:created"


# --------------------------------------------------------------------------
# Logging: one JSON object per line on stdout, standard library only.
# --------------------------------------------------------------------------
class JsonFormatter(logging.Formatter):
    EXTRA_FIELDS = ("method", "path", "status", "duration_ms")

    def format(self, record):
        entry = {
            "ts": datetime.datetime.fromtimestamp(
                record.created, tz=datetime.timezone.utc
            ).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in self.EXTRA_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _configure_logging():
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    level = getattr(logging, os.environ.get("LOG_LEVEL", "info").upper(), logging.INFO)
    log = logging.getLogger("shop")
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    return log


log = _configure_logging()
access_log = log.getChild("access")


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------
REQUESTS = Counter(
    "shop_http_requests_total",
    "HTTP requests handled",
    ["method", "endpoint", "status"],
)
LATENCY = Histogram(
    "shop_http_request_duration_seconds",
    "HTTP request duration in seconds",
    ["method", "endpoint"],
)
IN_FLIGHT = Gauge("shop_http_requests_in_flight", "HTTP requests being handled")


# --------------------------------------------------------------------------
# Backends (lazy; nothing connects at import time)
# --------------------------------------------------------------------------
_schema_lock = threading.Lock()
_schema_ready = False
_redis_lock = threading.Lock()
_redis_client = None

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS items (
    id serial PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz DEFAULT now()
)
"""


def pg_connect():
    """Connect using libpq's standard PG* env vars only (empty conninfo)."""
    return psycopg.connect("", connect_timeout=CONNECT_TIMEOUT)


def ensure_schema(conn):
    global _schema_ready
    if _schema_ready:
        return
    with _schema_lock:
        if _schema_ready:
            return
        conn.execute(SCHEMA_SQL)
        conn.commit()
        _schema_ready = True
        log.info("items table ready")


def get_redis():
    global _redis_client
    if _redis_client is None:
        with _redis_lock:
            if _redis_client is None:
                # from_url does not connect; the pool connects on first command.
                _redis_client = redis.Redis.from_url(
                    os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
                    socket_connect_timeout=SOCKET_TIMEOUT,
                    socket_timeout=SOCKET_TIMEOUT,
                    decode_responses=True,
                )
    return _redis_client


# --------------------------------------------------------------------------
# App
# --------------------------------------------------------------------------
app = Flask(__name__)


def _endpoint_label():
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


@app.before_request
def _start_timer():
    g.start = time.perf_counter()
    IN_FLIGHT.inc()
    g.in_flight = True


@app.after_request
def _record(response):
    duration = time.perf_counter() - g.get("start", time.perf_counter())
    endpoint = _endpoint_label()
    REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    if endpoint != "/metrics":
        LATENCY.labels(request.method, endpoint).observe(duration)
    access_log.info(
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(duration * 1000, 2),
        },
    )
    return response


@app.teardown_request
def _done(_exc):
    # teardown runs even when a view raised, so the gauge cannot leak.
    if g.pop("in_flight", False):
        IN_FLIGHT.dec()


@app.get("/")
def index():
    return jsonify(
        service="shop-api",
        routes=["/healthz", "/metrics", "/items", "/items/count"],
    )


def _check_postgres():
    try:
        with pg_connect() as conn:
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            conn.execute("SELECT 1").fetchone()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        log.warning("postgres health check failed: %s", str(exc).strip())
        return f"error: {type(exc).__name__}"


def _check_redis():
    try:
        get_redis().ping()
        return "ok"
    except Exception as exc:  # noqa: BLE001
        log.warning("redis health check failed: %s", str(exc).strip())
        return f"error: {type(exc).__name__}"


@app.get("/healthz")
def healthz():
    # Both checks run concurrently so a hung backend costs ~2 s, not 2 s each.
    checks = {}
    pg_thread = threading.Thread(
        target=lambda: checks.__setitem__("postgres", _check_postgres()),
        name="healthz-postgres",
        daemon=True,
    )
    pg_thread.start()
    checks["redis"] = _check_redis()
    pg_thread.join(CONNECT_TIMEOUT + STATEMENT_TIMEOUT_MS / 1000 + 1)
    checks.setdefault("postgres", "error: timeout")
    checks = {"postgres": checks["postgres"], "redis": checks["redis"]}

    if all(v == "ok" for v in checks.values()):
        return jsonify(status="ok", checks=checks), 200
    failing = sorted(k for k, v in checks.items() if v != "ok")
    return jsonify(status="unavailable", failing=failing, checks=checks), 503


@app.get("/metrics")
def metrics():
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)


@app.get("/items")
def list_items():
    with pg_connect() as conn:
        ensure_schema(conn)
        rows = conn.execute(
            "SELECT id, name, created_at FROM items ORDER BY id"
        ).fetchall()
    return jsonify(
        items=[
            {"id": r[0], "name": r[1], "created_at": r[2].isoformat()} for r in rows
        ]
    )


@app.post("/items")
def create_item():
    payload = request.get_json(silent=True)
    name = payload.get("name") if isinstance(payload, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        return jsonify(error='expected JSON body {"name": "<1-200 chars>"}'), 400
    name = name.strip()
    with pg_connect() as conn:
        ensure_schema(conn)
        row = conn.execute(
            "INSERT INTO items (name) VALUES (%s) RETURNING id, name, created_at",
            (name,),
        ).fetchone()
    # `with` committed the row.  The Redis counter is best effort: the item
    # exists now, so a Redis outage is logged instead of failing the request.
    try:
        get_redis().incr(COUNTER_KEY)
    except redis.RedisError as exc:
        log.warning("could not increment %s: %s", COUNTER_KEY, str(exc).strip())
    return jsonify(id=row[0], name=row[1], created_at=row[2].isoformat()), 201


@app.get("/items/count")
def items_count():
    value = get_redis().get(COUNTER_KEY)
    return jsonify(count=int(value or 0))


@app.errorhandler(psycopg.OperationalError)
@app.errorhandler(redis.RedisError)
def backend_unavailable(exc):
    log.error("backend unavailable: %s", str(exc).strip())
    return jsonify(error="backend unavailable"), 503

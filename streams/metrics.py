"""Prometheus metrics of the worker (prometheus-client, default registry) and the HTTP server that
serves them on the metrics port, with /healthz and /readyz (streams/health.py)."""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import Counter as Tally
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.exposition import MetricsHandler

if TYPE_CHECKING:
    from streams.health import Probes

_NS = "learnstream"

MESSAGES_CONSUMED = Counter(
    "messages_consumed", "Kafka messages consumed", ["topic"], namespace=_NS
)
EVENTS_CONSUMED = Counter(
    "events_consumed", "events consumed (array members counted one by one)", ["topic"], namespace=_NS
)
INVALID_EVENTS = Counter(
    "invalid_events", "events set aside to the dead-letter topic", ["topic", "reason"], namespace=_NS
)
ROWS_INSERTED = Counter("rows_inserted", "rows inserted", ["table"], namespace=_NS)
DUPLICATES_SKIPPED = Counter(
    "duplicates_skipped", "rows skipped because the event was already stored", ["table"], namespace=_NS
)
LOOP_FAILURES = Counter(
    "loop_failures", "rounds of a timer, task or loop of the worker that failed: infrastructure (retried next "
    "round) or unexpected (logged with its traceback; /readyz check `loops` fails until the next round succeeds)",
    ["loop", "kind"], namespace=_NS,
)
UNROUTED = Counter(
    "unrouted", "learning events stored in the raw log but not routed into the domain tables: event_data "
    "misses its type's contract (contract), a domain table refused the record (refused), or the type has no "
    "contract (unknown_type; the first 50 unknown names get their own label, later ones '(other)')",
    ["event_type", "reason"], namespace=_NS,
)
UNROUTED_ANNOUNCED = Counter(
    "unrouted_announced", "notices published to the unrouted topic", namespace=_NS,
)
DLQ_PUBLISHED = Counter(
    "dlq_published", "dead-letter envelopes published", ["source_topic"], namespace=_NS
)
WRITE_BATCHES = Counter(
    "write_batches",
    "batches written, by path: direct COPY, staged + ON CONFLICT, or direct refused for a stored row",
    ["table", "path"],
    namespace=_NS,
)
DB_RETRIES = Counter("db_retries", "failed database attempts that were retried", ["table"], namespace=_NS)
DB_UP = Gauge("db_up", "1 while the last database attempt succeeded, 0 during an outage", namespace=_NS)

BATCH_SIZE = Histogram(
    "batch_size_events",
    "events per batch written",
    ["table"],
    namespace=_NS,
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000),
)
COPY_SECONDS = Histogram(
    "copy_duration_seconds",
    "time of one batch's COPY + INSERT transaction(s)",
    ["table"],
    namespace=_NS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENT_TO_ROW_SECONDS = Histogram(
    "event_to_row_seconds",
    "end-to-end latency: event time to row committed",
    ["table"],
    namespace=_NS,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
INGEST_COMMIT_FAILURES = Counter(
    "ingest_commit_failures", "ingest offset commits that failed (retried with the next batch)", namespace=_NS
)
INGEST_HELD_ATTEMPTS = Counter(
    "ingest_held_batch_attempts", "failed attempts at an ingest batch that could be neither stored nor set aside "
    "(held: retried with backoff, its offsets and its topic's later ones uncommitted; /readyz check ingest names it)",
    ["topic"], namespace=_NS,
)
CONSUMER_LAG = Gauge(
    "consumer_lag_messages",
    "messages between a partition's end and the group's committed offset",
    ["topic", "partition"],
    namespace=_NS,
)

WINDOWS_CLOSED = Counter("windows_closed", "windows closed and written as rollups", ["kind"], namespace=_NS)
LATE_EVENTS = Counter(
    "late_events", "events later than the grace period of a window (sent to the late-events topic)", ["kind"],
    namespace=_NS,
)
ENGAGEMENT_RESETS = Counter(
    "engagement_resets", "engagement counters (views, likes, ...) seen going down (flagged, not subtracted)", namespace=_NS
)
WINDOW_DUPLICATES = Counter(
    "window_duplicates_skipped", "redelivered events already folded into their window", ["kind"], namespace=_NS
)
WINDOW_INPUT_RESEEKS = Counter(
    "window_input_reseeks", "window-input partitions sought back: messages the consumer fetched but never "
    "delivered to the window stage (a Faust race around recovery)", namespace=_NS,
)
WINDOWS_RECOMPUTED = Counter(
    "windows_recomputed", "closed windows recomputed from the stored rows after late events (corrections "
    "published)", ["kind"], namespace=_NS,
)
RECOMPUTE_PENDING = Gauge(
    "recompute_pending_hour_buckets",
    "hours (one-hour buckets) of closed windows waiting to be recomputed after late events", ["kind"],
    namespace=_NS,
)
PARKED_EVENTS = Gauge(
    "parked_events", "learning events stored and waiting for their referent (a prediction, a model, ...)",
    namespace=_NS,
)
PARKED_RESUMED = Counter(
    "parked_events_applied", "parked learning events applied once their referent arrived", namespace=_NS,
)
PARKED_EXPIRED = Counter(
    "parked_events_expired", "parked learning events dead-lettered because their referent never came",
    namespace=_NS,
)
JOB_SECONDS = Histogram(
    "job_duration_seconds", "job runs by duration", ["job"], namespace=_NS,
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
JOB_LAST_SUCCESS = Gauge(
    "job_last_success_timestamp_seconds", "when the job last succeeded (unix time)", ["job"], namespace=_NS,
)
JOB_FAILURES = Counter("job_failures", "job runs that failed", ["job"], namespace=_NS)
JOB_ROWS = Counter("job_rows", "rows the job's successful runs wrote", ["job"], namespace=_NS)
JOB_WORKSPACES_SKIPPED = Counter(
    "job_workspaces_skipped", "workspaces a per-workspace job skipped because their data failed the computation "
    "(a data exception: a value out of range, an unknown time zone); the run goes on with the others", ["job"],
    namespace=_NS,
)
MAINTENANCE_PARTITIONS = Counter(
    "maintenance_partitions", "partitions the maintenance runs acted on, by action: created, detached, dropped, "
    "archived, skipped (a detach whose lock retries ran out; the next run tries again)", ["table", "action"],
    namespace=_NS,
)
MAINTENANCE_ROWS = Counter(
    "maintenance_rows", "rows the maintenance runs removed from a live table, by action: archived or deleted "
    "(batches), dropped or archived (in whole partitions)", ["table", "action"], namespace=_NS,
)
MAINTENANCE_SECONDS = Histogram(
    "maintenance_run_duration_seconds", "maintenance runs (not dry runs) by duration", namespace=_NS,
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
MAINTENANCE_LAST_SUCCESS = Gauge(
    "maintenance_last_success_timestamp_seconds", "when a maintenance run last completed a table's policy "
    "without error (unix time)", ["table"], namespace=_NS,
)
MAINTENANCE_FAILURES = Counter(
    "maintenance_failures", "tables whose policy failed in a maintenance run (logged in maintenance_actions)",
    ["table"], namespace=_NS,
)
STAGE_FAILURES = Counter(
    "stage_failures", "messages or windows a stage set aside to the DLQ because of what they carried",
    ["stage", "reason"], namespace=_NS,
)
CONFIG_ROWS_INVALID = Gauge(
    "config_rows_invalid",
    "configuration rows the contract refuses, skipped by the loader that last read the table "
    "(performance_alerts, alert_channels, report_schedules); the other rows keep working",
    ["table"], namespace=_NS,
)
ALERTS_SKIPPED_OLD = Counter(
    "alert_windows_skipped_old", "closed windows not evaluated by alert rules: older than alert_max_age_s",
    namespace=_NS,
)
ALERT_RULE_CHECKS = Counter(
    "alert_rule_checks", "looks at the alert rules' change marker (after a NOTIFY, or every 2 s) by outcome: "
    "reloaded (the rules changed, or the first load) or unchanged (e.g. a NOTIFY nobody's change sent)",
    ["outcome"], namespace=_NS,
)
CONFIG_LOCK_TIMEOUTS = Counter(
    "config_lock_timeouts", "loads of configuration (what: alert_rules, the alert engine's rules; alert_channels, the "
    "delivery's channel directory) that gave up on a table lock someone held longer than their lock_timeout: the "
    "last ones loaded stay in use and the load is tried again in the next round", ["what"], namespace=_NS,
)
OPEN_PANES = Gauge("window_open_panes", "window panes held open on this worker", ["kind"], namespace=_NS)
ALERT_NOTIFICATIONS = Counter(
    "alert_notifications", "alert notifications sent, by status", ["status"], namespace=_NS
)
ALERT_INSTANCES = Gauge(
    "alert_instances", "alert instances (rule x series) the alert engine of this worker holds; those of "
    "series quiet past alert_instance_expiry_s are dropped", namespace=_NS,
)
ALERT_SECONDS = Histogram(
    "alert_notification_seconds",
    "window closed (wall clock) to its alert notification delivered to Kafka",
    ["status"],
    namespace=_NS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ALERT_DELIVERIES = Counter(
    "alert_deliveries", "alert notifications per channel kind and outcome (delivered, dead_lettered, skipped: "
    "an inactive channel)", ["channel_kind", "outcome"], namespace=_NS,
)
ALERT_DELIVERY_RETRIES = Counter(
    "alert_delivery_retries", "failed delivery attempts that will be retried", ["channel_kind"], namespace=_NS,
)
ALERT_COMMANDS_REFUSED = Counter(
    "alert_commands_refused", "alert commands (ack, mute, unmute) not applied, by reason (foreign_workspace: the "
    "alert or rule named belongs to another workspace than the command's)", ["reason"], namespace=_NS,
)
ALERT_FORGED = Counter(
    "alert_notifications_forged", "notifications on the notifications topic that match no notification the alert "
    "engine recorded (alert_notifications): not delivered, dead-lettered as unknown_notification", namespace=_NS,
)
OUTBOUND_REFUSED = Counter(
    "outbound_refused", "alert deliveries not attempted: the channel's host resolved to an address the outbound "
    "policy refuses (reason: loopback, link_local, private, cgnat, unspecified, multicast, reserved, non_global; "
    "LEARNSTREAM_OUTBOUND_ALLOW)", ["channel_kind", "reason"], namespace=_NS,
)
ALERT_UNDELIVERED = Counter(
    "alert_undelivered", "notifications dead-lettered to the undelivered topic, by reason", ["reason"],
    namespace=_NS,
)
ALERT_DELIVERY_PENDING = Gauge(
    "alert_delivery_pending", "alert notifications consumed and not yet delivered everywhere", namespace=_NS,
)
DELIVERY_CHANNEL_BACKLOG = Gauge(
    "delivery_channel_backlog", "alert notifications waiting for one channel (in memory and in its backlog), "
    "labelled <workspace id>/<channel> for the 20 largest, the rest summed as `other`", ["channel"], namespace=_NS,
)


def observe_many(child: Histogram, values: list[float]) -> None:
    """Observe many values at once: one increment per bucket instead of two per value.

    Same result as calling child.observe(v) for each value (a value goes to the first bucket
    whose upper bound is >= it), at a fraction of the cost on the per-event path. Relies on
    prometheus-client's Histogram keeping `_upper_bounds`, `_buckets` and `_sum`; falls back to
    observe() if a future version does not.
    """
    bounds = getattr(child, "_upper_bounds", None)
    if bounds is None:  # pragma: no cover - other prometheus-client internals
        for v in values:
            child.observe(v)
        return
    for i, n in Tally(bisect_left(bounds, v) for v in values).items():
        child._buckets[i].inc(n)
    child._sum.inc(sum(values))


def scrape(port: int, host: str = "127.0.0.1") -> dict[tuple[str, tuple], float]:
    """A worker's /metrics as {(sample name, sorted label pairs): value}."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body)
        for s in fam.samples
    }


def total(samples: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def serve(host: str, port: int, probes: Probes | None = None) -> int:
    """Serve /metrics, /healthz and /readyz (answered by `probes`; without them both say 503 "not
    started") from a thread; return the bound port (0 = disabled)."""
    if port == 0:
        return 0
    return start_server(host, port, probes).server_port


def start_server(host: str, port: int, probes: Probes | None = None) -> ThreadingHTTPServer:
    """The metrics port's HTTP server, running in a daemon thread (port 0 here: a free one)."""
    import threading

    server = ThreadingHTTPServer((host, port), _handler(probes))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="learnstream-metrics", daemon=True).start()
    return server


def _handler(probes: Probes | None) -> type[MetricsHandler]:
    class Handler(MetricsHandler):
        """/metrics (prometheus-client's exposition: text or OpenMetrics, gzip if asked),
        /healthz and /readyz (JSON, 200 or 503); anything else 404."""

        def do_GET(self) -> None:  # http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                return super().do_GET()
            if path not in ("/healthz", "/readyz"):
                return self._json(404, {"error": f"not found: {path}; try /metrics, /healthz, /readyz"})
            if probes is None:
                return self._json(503, {"status": "failing", "failed": ["loop"], "checks": {
                    "loop": {"ok": False, "detail": "the worker is not started yet"}}})
            status, body = probes.healthz() if path == "/healthz" else probes.readyz()
            return self._json(status, body)

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # quiet: probes come every few seconds
            return None

    return Handler

"""Alert latency, measured on a running worker (`learnstream bench --alerts`, and `learnstream demo`).

A rule `api_latency.max > threshold` over the worker's tumbling windows; `series` hosts send live
samples (event time = publish time) several times a second; every other window is a spike. Each
spike window fires one notification when it closes and the next window resolves it. For every
firing notification two latencies are taken, on this machine's clock:

* close -> notification: from the window's `closed_at` (stamped by the worker when it closed the
  window; read from the rollups topic) to the notification read from alert-notifications;
* publish -> notification: from the publishing of the first sample over the threshold in that
  window to the notification read. This includes the rest of the window and the grace period:
  a window's result exists only once it has closed.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer

from db.alerts import add_rule, remove_rule
from db.pool import connect
from schemas.alerts import AlertRule
from streams.config import Settings, admin_dsn
from streams.kafka_auth import KafkaAuth, kafka_auth
from streams.publish import Publisher


@dataclass
class AlertLatency:
    window_s: float
    notifications: list[dict] = field(default_factory=list)
    close_ms: list[float] = field(default_factory=list)
    publish_ms: list[float] = field(default_factory=list)
    spikes: int = 0

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.notifications:
            out[n["status"]] = out.get(n["status"], 0) + 1
        return out

    def lines(self) -> list[str]:
        def pct(values: list[float], q: float) -> float:
            s = sorted(values)
            return s[min(len(s) - 1, math.ceil(q * len(s)) - 1)] if s else float("nan")

        out = [f"spike windows sent: {self.spikes}; notifications: "
               + ", ".join(f"{k}={v}" for k, v in sorted(self.statuses().items()))]
        for label, values in (("window closed -> notification on the topic", self.close_ms),
                              ("triggering sample published -> notification on the topic", self.publish_ms)):
            if values:
                out.append(f"{label}: p50 {pct(values, 0.5):,.0f} ms, p99 {pct(values, 0.99):,.0f} ms, "
                           f"max {max(values):,.0f} ms (n={len(values)})")
        return out


async def _tail(bootstrap: str, topic: str, auth: KafkaAuth) -> AIOKafkaConsumer:
    """A consumer (no group) positioned at the current end of every partition of `topic`."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="latest", **auth.client_kwargs())
    await consumer.start()
    deadline = time.monotonic() + 15
    while not consumer.assignment():
        if time.monotonic() > deadline:
            await consumer.stop()
            raise RuntimeError(f"topic {topic} has no partitions (is a worker running?)")
        await asyncio.sleep(0.1)
    for tp in consumer.assignment():
        await consumer.position(tp)  # resolves "latest" now, before anything is published
    return consumer


async def measure(settings: Settings, *, series: int = 4, cycles: int = 3, rate_hz: float = 5.0,
                  threshold: float = 100.0, name: str = "api latency high",
                  rule: AlertRule | None = None) -> AlertLatency:
    """`rule`: one the caller added already (an `api_latency.max >` rule over the tumbling windows,
    e.g. with `learnstream alerts rules add`; the demo does), used and left in place; else one is
    added for the run and removed after it."""
    window = settings.window_tumbling_s
    own = rule is None
    if rule is None:
        rule = AlertRule(id=uuid.uuid4(), workspace_id=uuid.uuid4(), alert_name=name, metric="api_latency.max",
                         condition_op=">", threshold_value=threshold, window_s=window, severity="warning")
    elif (rule.metric, rule.condition_op, rule.window_s) != ("api_latency.max", ">", window):
        raise ValueError(f"rule {rule.alert_name!r} is not api_latency.max > N over {window:g} s windows")
    ws, threshold = rule.workspace_id, rule.threshold_value
    auth = kafka_auth(settings)
    notes_c = await _tail(settings.kafka_bootstrap, settings.alert_notifications_topic, auth)
    rollups_c = await _tail(settings.kafka_bootstrap, settings.rollups_topic, auth)
    if own:
        conn = await connect(settings.database_url)
        try:
            await add_rule(conn, rule, created_by="learnstream bench")
        finally:
            await conn.close()
    await asyncio.sleep(1.0)  # the workers reload rules on NOTIFY

    result = AlertLatency(window)
    first_spike: dict[tuple[str, float], float] = {}
    received: dict[tuple[str, float], float] = {}
    closed_at: dict[tuple[str, float], float] = {}
    hosts = [f"web-{i}" for i in range(series)]
    expected = 0

    async def drain(consumer: AIOKafkaConsumer, on) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in batch.values():
                for r in records:
                    on(orjson.loads(r.value), now)

    def on_note(n: dict, now: float) -> None:
        if n["rule_id"] == str(rule.id):
            result.notifications.append(n)
            if n["status"] == "firing":
                received[(n["labels"]["host"], datetime.fromisoformat(n["triggered_at"]).timestamp())] = now

    def on_rollup(r: dict, now: float) -> None:
        if r["workspace_id"] == str(ws) and r["window_s"] == window and r["step_s"] == window:
            end = datetime.fromisoformat(r["window_end"]).timestamp()
            closed_at[(r["series"]["tags"]["host"], end)] = datetime.fromisoformat(r["closed_at"]).timestamp()

    readers = [asyncio.ensure_future(drain(notes_c, on_note)), asyncio.ensure_future(drain(rollups_c, on_rollup))]
    try:
        async with Publisher(settings.kafka_bootstrap, linger_ms=0, auth=auth) as pub:
            # start on a window boundary; 2 windows per cycle (spike, calm), then 2 calm ones to close
            start = (math.floor(time.time() / window) + 1) * window
            await asyncio.sleep(max(0.0, start - time.time()))
            end = start + (2 * cycles + 2) * window
            while (now := time.time()) < end:
                w_start = math.floor(now / window) * window
                spike = int(round((w_start - start) / window)) % 2 == 0 and w_start < start + 2 * cycles * window
                msgs = []
                for h in hosts:
                    value = threshold * 5 if spike else threshold / 2
                    if spike and (h, w_start) not in first_spike:
                        first_spike[(h, w_start)] = now
                    msgs.append((str(ws).encode(), orjson.dumps({
                        "sample_id": str(uuid.uuid4()), "workspace_id": str(ws), "metric_name": "api_latency",
                        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(), "value": value, "unit": "ms",
                        "tags": {"host": h}})))
                await pub.send_all(settings.performance_topic, msgs)
                await asyncio.sleep(max(0.0, 1 / rate_hz - (time.time() - now)))
        result.spikes = len(first_spike)
        expected = 2 * len(first_spike)  # a firing and a resolved per spike window
        deadline = time.time() + 20 + settings.window_grace_s + settings.window_idle_s
        while len(result.notifications) < expected and time.time() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
    finally:
        for r in readers:
            r.cancel()
        await notes_c.stop()
        await rollups_c.stop()
        if own:
            conn = await connect(settings.database_url)
            try:
                await remove_rule(conn, rule.id)
            finally:
                await conn.close()
    for (host, end), got in received.items():
        pub_at = first_spike.get((host, end - window))
        if pub_at is not None:
            result.publish_ms.append((got - pub_at) * 1000)
        if (host, end) in closed_at:
            result.close_ms.append(max(0.0, got - closed_at[(host, end)]) * 1000)
    return result


async def prepared(base: Settings, tag: str, what: str = "alerts") -> Settings:
    """A fresh migrated database and unique topic names for one isolated bench run."""
    from db.databases import create_migrated_database, dsn_for

    name = f"bench_{what}_{tag}"
    # made by the owner; the bench's workers log in as the workers' login (database_url)
    owner_dsn = await create_migrated_database(admin_dsn(base), name)
    topics = {f"{t}_topic": f"bench.{what}.{tag}.{t}" for t in (
        "learning", "performance", "engagement", "content", "accounts", "dlq", "window_input", "rollups",
        "late_events", "alert_notifications", "alert_commands")}
    return base.model_copy(update={"database_url": dsn_for(base.database_url, name), "admin_database_url": owner_dsn,
                                   "app_id": f"bench-{what}-{tag}", **topics})


def worker_env(settings: Settings, state_dir: str, metrics_port: int = 0) -> dict[str, str]:
    """The environment of a worker subprocess running with `settings`."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNSTREAM_")}
    for name in ("kafka_bootstrap", "database_url", "app_id", "learning_topic", "performance_topic", "engagement_topic",
                 "content_topic", "accounts_topic", "dlq_topic", "window_input_topic", "rollups_topic", "late_events_topic",
                 "alert_notifications_topic",
                 "alert_commands_topic", "window_tumbling_s", "window_hopping_s", "window_hop_step_s",
                 "window_grace_s", "window_idle_s", "topic_partitions"):
        env[f"LEARNSTREAM_{name.upper()}"] = str(getattr(settings, name))
    env["LEARNSTREAM_METRICS_PORT"] = str(metrics_port)
    env["LEARNSTREAM_STATE_DIR"] = env["LEARNSTREAM_DATA_DIR"] = state_dir
    # the Kafka principal this process runs as (the bench sets the operator's): without it the
    # broker, which authenticates every client, closes the worker's connections
    env.update({k: v for k, v in os.environ.items()
                if k.startswith("LEARNSTREAM_KAFKA_") and k != "LEARNSTREAM_KAFKA_BOOTSTRAP"})
    return env


def run_alert_bench(base: Settings, *, window_s: float, grace_s: float, series: int, cycles: int,
                    rate_hz: float, log_dir) -> AlertLatency:
    """Start a worker with `window_s` tumbling windows on its own database and topics, measure,
    stop it, drop the database."""
    from db.databases import drop_database
    from streams.worker import spawn_worker, stop_worker

    tag = uuid.uuid4().hex[:8]
    settings = asyncio.run(prepared(base, tag)).model_copy(update={
        "window_tumbling_s": window_s, "window_hopping_s": window_s * 3, "window_hop_step_s": window_s,
        "window_grace_s": grace_s, "window_idle_s": 2.0})
    env = worker_env(settings, f"/tmp/learnstream-bench-alerts-{tag}")
    log_dir.mkdir(parents=True, exist_ok=True)
    worker = spawn_worker(env, log_dir / f"alerts-worker-{tag}.log")
    try:
        return asyncio.run(measure(settings, series=series, cycles=cycles, rate_hz=rate_hz))
    finally:
        stop_worker(worker)
        asyncio.run(drop_database(admin_dsn(base), settings.database_url.rsplit("/", 1)[1]))

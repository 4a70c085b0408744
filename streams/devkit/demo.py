"""`learnstream demo`: the whole job once, on the local services, with a summary of what happened."""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from db.migrate import migrate
from db.partitions import ensure_partitions, partition_counts
from db.pool import connect
from db.tables import TABLES
from schemas.events import MAX_EVENTS_PER_MESSAGE
from streams.config import Settings, admin_dsn, load_settings, state_dir
from streams.devkit.bench.alerts import AlertLatency
from streams.devkit.services import principal_auth
from streams.devkit.synthetic import Generator, Workload
from streams.metrics import scrape, total
from streams.publish import publish_messages
from streams.topics import ensure_topics
from streams.worker import spawn_worker, stop_worker

#: small windows, so the demo sees them close within seconds (defaults: 60 s, 300/60 s, grace 10 s)
DEMO_WINDOWS = {"window_tumbling_s": 2.0, "window_hopping_s": 6.0, "window_hop_step_s": 2.0,
                "window_grace_s": 1.0, "window_idle_s": 2.0}


def outbound_allow(am_port: int) -> dict[str, str]:
    """The demo's own Alertmanager, on 127.0.0.1 (a loopback address the delivery refuses unless the
    operator trusts it), for the worker and the CLI: named as the operator's Alertmanager
    (LEARNSTREAM_ALERTMANAGER_URL), which an `alertmanager` channel at exactly that URL may reach,
    and nothing else there (no entry in LEARNSTREAM_OUTBOUND_ALLOW: a tenant's webhook at that
    address is still refused)."""
    return {"LEARNSTREAM_ALERTMANAGER_URL": f"http://127.0.0.1:{am_port}"}


def _start_worker(settings: Settings, port: int, log: Path, am_port: int) -> subprocess.Popen:
    # the demo runs the jobs itself (step 9) to show each one's figures and time
    env = dict(os.environ, LEARNSTREAM_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
               LEARNSTREAM_DATABASE_URL=settings.database_url, LEARNSTREAM_METRICS_PORT=str(port),
               LEARNSTREAM_JOBS_ENABLED="false", **outbound_allow(am_port),
               **{f"LEARNSTREAM_{k.upper()}": str(v) for k, v in DEMO_WINDOWS.items()})
    return spawn_worker(env, log)


def run_demo(events_per_topic: int = 20000, seed: int | None = None) -> int:
    from streams.devkit.services import choose_port, free_port, up

    print("== learnstream demo ==")
    print("1. services (Kafka 4.x KRaft + PostgreSQL; started once, reused after)")
    from streams.devkit.services.postgres import redact

    for k, v in up().items():
        os.environ[k] = v
        print(f"   {k}={redact(v)}")  # a DSN's password stays in .learnstream/services.env (0600)
    # the worker runs as the worker principal (services.env, this process's environment); the demo
    # publishes as the producer principal; its CLI commands and its alert step (which publishes and
    # reads notifications) run as the operator, admin
    from streams.devkit.services import principal_env

    admin = {k.removeprefix("LEARNSTREAM_").lower(): v for k, v in principal_env("admin").items()}
    settings = load_settings(**DEMO_WINDOWS, **admin)

    async def prepare() -> None:
        conn = await connect(admin_dsn(settings))  # migrations: the schema owner
        try:
            applied = await migrate(conn)
            await ensure_partitions(conn)
        finally:
            await conn.close()
        print(f"2. migrations: {', '.join(m.name for m in applied) or 'schema already current'}")
        await ensure_topics(settings.kafka_bootstrap, [*settings.source_topics.values(), settings.dlq_topic],
                            settings.topic_partitions)

    asyncio.run(prepare())

    port = choose_port(settings.metrics_port)  # the usual one if free
    am_port = free_port()  # step 7's Alertmanager: the worker is allowed to post to it
    log = state_dir() / "demo-worker.log"
    print(f"3. worker starting (log: {log})")
    worker = _start_worker(settings, port, log, am_port)
    try:
        return _publish_and_report(settings, port, events_per_topic, seed, am_port)
    finally:
        stop_worker(worker)


def _publish_and_report(settings: Settings, port: int, events_per_topic: int, seed: int | None, am_port: int) -> int:
    seed = seed if seed is not None else random.randrange(1 << 30)
    # event times within the last second: a bulk replay spread wider than the grace period would
    # be mostly late (see step 6, where 50 events a minute old are sent late on purpose)
    gen = Generator(seed=seed, spread_s=1.0)
    print(f"4. publishing a synthetic workload (seed {seed}): per topic {events_per_topic} events, half as "
          "single-event messages and half as 500-event arrays, with ~2% duplicates, ~2% bad input and "
          "one array over the 1,000-event limit")
    loads: dict[str, list[Workload]] = {}
    small_faults = ("invalid_json", "invalid_utf8")  # an oversized array is sent once, below
    for kind in TABLES:
        loads[kind] = [
            gen.workload(kind, events_per_topic // 2, array_size=1, invalid_share=0.02, duplicate_share=0.02,
                         message_faults=small_faults),
            gen.workload(kind, events_per_topic - events_per_topic // 2, array_size=500,
                         invalid_share=0.02, duplicate_share=0.02, message_faults=small_faults),
        ]
        oversized = Workload(kind, bad_messages=1)
        oversized.messages.append((gen.workspaces[0].encode(), gen.bad_message(kind, "too_many_events")))
        oversized.invalid["too_many_events"] = MAX_EVENTS_PER_MESSAGE + 1
        loads[kind].append(oversized)
    t0 = time.monotonic()

    async def publish_all() -> None:
        await asyncio.gather(*(
            publish_messages(settings.kafka_bootstrap, settings.source_topics[kind], [m for w in ws for m in w.messages],
                             auth=principal_auth("producer"))
            for kind, ws in loads.items()
        ))

    asyncio.run(publish_all())
    published = time.monotonic() - t0
    sent_events = {k: sum(w.events for w in ws) for k, ws in loads.items()}
    print(f"   published {sum(sent_events.values())} events in "
          f"{sum(len(w.messages) for ws in loads.values() for w in ws)} messages in {published:.1f}s")

    print("5. waiting until every event is stored or dead-lettered ...")
    deadline = time.monotonic() + 300
    while True:
        m = scrape(port)
        consumed = {k: total(m, "learnstream_events_consumed_total", topic=settings.source_topics[k]) for k in TABLES}
        if consumed == sent_events or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    ok = consumed == sent_events

    async def report() -> list[str]:
        conn = await connect(settings.database_url)
        lines = []
        try:
            for spec in TABLES.values():
                parts = [(n, c) for n, c in await partition_counts(conn, spec.name) if c]
                total = sum(c for _, c in parts)
                lines.append(f"   {spec.name}: {total} rows in total")
                lines.extend(f"      {n}: {c}" for n, c in parts)
        finally:
            await conn.close()
        return lines

    print("\n== summary ==")
    print(f"{'topic':<22}{'events':>9}{'valid':>9}{'dups':>7}{'invalid':>9}{'inserted':>10}{'skipped':>9}")
    for kind, ws in loads.items():
        topic, table = settings.source_topics[kind], TABLES[kind].name
        print(f"{topic:<22}{sent_events[kind]:>9}{sum(w.valid_events for w in ws):>9}"
              f"{sum(w.duplicates for w in ws):>7}{sum(sum(w.invalid.values()) for w in ws):>9}"
              f"{int(total(m, 'learnstream_rows_inserted_total', table=table)):>10}"
              f"{int(total(m, 'learnstream_duplicates_skipped_total', table=table)):>9}")
    print("rows per table and partition (partitions with rows):")
    print("\n".join(asyncio.run(report())))
    reasons: dict[str, float] = {}
    for (n, lab), v in m.items():
        if n == "learnstream_invalid_events_total":
            reasons[dict(lab)["reason"]] = reasons.get(dict(lab)["reason"], 0) + v
    print(f"dead letters published to {settings.dlq_topic}: {int(total(m, 'learnstream_dlq_published_total'))} "
          f"envelopes, covering {int(sum(reasons.values()))} events: "
          + ", ".join(f"{r}={int(v)}" for r, v in sorted(reasons.items())))
    total_events = sum(sent_events.values())
    print(f"end to end: {total_events} events consumed, validated and stored in {elapsed:.1f}s "
          f"(publish included) = {total_events / elapsed:,.0f} events/s")
    ok = _windows_and_alerts(settings, port, seed, am_port) and ok
    ok = _domain(settings, port, seed) and ok
    ok = _jobs(settings) and ok
    ok = _report(settings) and ok
    ok = _tenants(settings) and ok
    print(f"metrics were served at http://127.0.0.1:{port}/metrics while the worker ran "
          "(`learnstream worker` serves them on :9464 by default)")
    print("next: `learnstream worker` to keep ingesting, `learnstream publish TOPIC FILE.jsonl`, "
          "`learnstream services down` to stop the services")
    if consumed != sent_events:
        print(f"INCOMPLETE: consumed {consumed} of {sent_events} within the time limit", file=sys.stderr)
    return 0 if ok else 1


def _windows_and_alerts(settings: Settings, port: int, seed: int, am_port: int) -> bool:
    print(f"\n6. windows: tumbling {settings.window_tumbling_s:g} s, hopping {settings.window_hopping_s:g} s "
          f"every {settings.window_hop_step_s:g} s, grace {settings.window_grace_s:g} s; a partition quiet for "
          f"{settings.window_idle_s:g} s closes its windows on wall-clock time")
    # 50 samples a minute old, after their windows closed: stored, but set aside as late
    old = Generator(seed=seed, now=datetime.now(UTC) - timedelta(minutes=1), spread_s=1.0)  # same workspaces
    stale = [old.performance_sample() for _ in range(50)]
    asyncio.run(publish_messages(settings.kafka_bootstrap, settings.performance_topic,
                                 [(stale[0]["workspace_id"].encode(), orjson.dumps(stale))],
                                 auth=principal_auth("producer")))
    time.sleep(settings.window_grace_s + settings.window_idle_s + 2)  # the last windows close on idle

    async def rollups() -> list[str]:
        conn = await connect(settings.database_url)
        try:
            lines = []
            for table in ("performance_rollups", "learning_rollups", "engagement_rollups"):
                n = await conn.fetchval(f"SELECT count(*) FROM {table}")
                lines.append(f"   {table}: {n} closed windows")
            rows = await conn.fetch(
                "SELECT metric_name, tags, window_start, window_s, count, mean, p95, max FROM performance_rollups "
                "WHERE window_s = $1 AND closed_at > now() - interval '1 minute' ORDER BY count DESC LIMIT 3",
                settings.window_tumbling_s)
            for r in rows:
                tags = ",".join(f"{k}={v}" for k, v in sorted(r["tags"].items()))
                lines.append(f"      e.g. {r['metric_name']}{{{tags}}} [{r['window_start']:%H:%M:%S}+{r['window_s']:g}s]: "
                             f"count {r['count']}, mean {r['mean']:.1f}, p95 {r['p95']:.1f}, max {r['max']:.1f}")
            n = await conn.fetchval("SELECT count(*) FROM engagement_by_time")
            lines.append(f"   engagement_by_time: {n} (workspace, platform, connector, day, hour) cells")
            return lines
        finally:
            await conn.close()

    print("\n".join(asyncio.run(rollups())))
    m = scrape(port)
    late = int(total(m, "learnstream_late_events_total"))
    print(f"   windows closed: {int(total(m, 'learnstream_windows_closed_total'))}; late events set aside to "
          f"{settings.late_events_topic}: {late} (the 50 samples a minute old, sent on purpose); windows they "
          f"reached, recomputed from the stored rows so far: {int(total(m, 'learnstream_windows_recomputed_total'))}")
    return show_alerts(settings, port, cli_env=dict(_cli_env(settings), **outbound_allow(am_port)),
                       am_dir=state_dir() / "alertmanager", am_port=am_port).good


#: the local Alertmanager's configuration: every alert kept and shown by its API, notifications to nobody
ALERTMANAGER_CONFIG = """\
# written by `learnstream demo`: the demo reads the alerts back through the v2 API; no receiver is notified
route:
  receiver: "null"
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
"""

ALERTMANAGER_MISSING = ("Alertmanager not installed (run `learnstream services monitoring`); "
                        "skipping the Alertmanager part")

#: the demo's rule (as `learnstream alerts rules add` options)
DEMO_RULE = {"name": "api latency high", "metric": "api_latency.max", "op": ">", "threshold": "100",
             "severity": "warning"}
#: the name of the demo workspace's channel to the local Alertmanager
DEMO_CHANNEL = "local-am"


@dataclass
class AlertsShown:
    """What step 7 showed: the rule added with the CLI, what the worker sent, what Alertmanager held."""

    rule_name: str
    good: bool = False
    latency: AlertLatency | None = None
    alertmanager_url: str | None = None  # None: Alertmanager not installed, that part skipped
    #: each alert Alertmanager listed (GET /api/v2/alerts) while it was open, as last seen
    alertmanager_alerts: list[dict] = field(default_factory=list)
    #: (labels' fingerprint, startsAt) of those that then left its active alerts (resolved)
    alertmanager_resolved: set[tuple[str, str]] = field(default_factory=set)
    commands: list[list[str]] = field(default_factory=list)  # the CLI commands run


def _cli_env(settings: Settings) -> dict[str, str]:
    """The environment of the CLI commands the demo runs: its services, its (small) windows."""
    from streams.devkit.services import principal_env

    return dict(os.environ, LEARNSTREAM_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
                LEARNSTREAM_DATABASE_URL=settings.database_url, **principal_env("admin"),
                **{f"LEARNSTREAM_{k.upper()}": str(getattr(settings, k)) for k in DEMO_WINDOWS})


def _learnstream(args: list[str], env: dict[str, str], shown: AlertsShown) -> str:
    """Run `learnstream ARGS` (printed first, so it can be copied); its output, indented. Fails loudly."""
    print("   $ " + shlex.join(["learnstream", *args]))
    shown.commands.append(args)
    done = subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"`learnstream {shlex.join(args)}` failed ({done.returncode}): "
                           f"{done.stderr.strip() or done.stdout.strip()}")
    for line in done.stdout.splitlines():
        print("     " + line)
    return done.stdout


def show_alerts(settings: Settings, port: int, *, cli_env: dict[str, str], am_dir: Path,
                am_port: int | None = None) -> AlertsShown:
    """Step 7: a local Alertmanager (if installed), a channel to it and a rule added with the CLI, live
    samples with spikes through the worker on `port`, then what Alertmanager held and what the worker
    delivered. The rule and channel are removed (with the CLI) at the end; Alertmanager is stopped.
    Alertmanager listens on `am_port` (None: a free one), which the worker and `cli_env` must allow
    (LEARNSTREAM_ALERTMANAGER_URL, see `outbound_allow`)."""
    from schemas.alerts import AlertNotification
    from streams.alerts.cli import format_line
    from streams.devkit.bench.alerts import measure
    from streams.devkit.services.monitoring import find_binary, start_alertmanager

    shown = AlertsShown(rule_name=DEMO_RULE["name"])
    window = f"{settings.window_tumbling_s:g}s"
    installed = find_binary("alertmanager") is not None
    print(f"\n7. alerts: a rule added with the CLI, '{DEMO_RULE['metric']} {DEMO_RULE['op']} {DEMO_RULE['threshold']}' "
          f"over {window} windows" + (", delivered to a local Alertmanager" if installed else "")
          + "; 4 hosts send live samples 5 times a second, every other window a spike")
    am = None
    if not installed:
        print("   " + ALERTMANAGER_MISSING)
    else:
        am_dir.mkdir(parents=True, exist_ok=True)
        config = am_dir / "alertmanager.yml"
        config.write_text(ALERTMANAGER_CONFIG)
        am = start_alertmanager(config, am_port, am_dir)
        shown.alertmanager_url = am.url
        print(f"   Alertmanager started on {am.url} (config {config}, log {am.log_file})")
    w = str(uuid.uuid4())
    rule_id = channel = None
    try:
        _learnstream(["workspaces", "add", f"demo-alerts-{w[:8]}", "--id", w], cli_env, shown)
        if am is not None:
            _learnstream(["alerts", "channels", "add", DEMO_CHANNEL, "-w", w, "--kind", "alertmanager",
                          "--url", am.url, "--timeout", "5s"], cli_env, shown)
            channel = DEMO_CHANNEL
        rule_id = _learnstream(["alerts", "rules", "add", "-w", w, "--name", DEMO_RULE["name"],
                                "--metric", DEMO_RULE["metric"], "--op", DEMO_RULE["op"],
                                "--threshold", DEMO_RULE["threshold"], "--window", window,
                                "--severity", DEMO_RULE["severity"], *(["--channel", channel] if channel else [])],
                               cli_env, shown).strip()

        async def run() -> None:
            from db.alerts import get_rule

            conn = await connect(settings.database_url)
            try:
                rule = await get_rule(conn, uuid.UUID(rule_id))
            finally:
                await conn.close()
            done = asyncio.Event()
            watcher = asyncio.ensure_future(_watch_alertmanager(am.url, rule_id, done, shown)) if am else None
            try:
                shown.latency = await measure(settings, series=4, cycles=2, rule=rule)
            finally:
                done.set()
                if watcher is not None:
                    await watcher

        asyncio.run(run())
    except RuntimeError as exc:  # a CLI command failed: the rest of the demo still runs
        print(f"INCOMPLETE: {exc}", file=sys.stderr)
        return shown
    finally:
        try:
            if rule_id:
                _quiet(["alerts", "rules", "rm", rule_id, "-w", w], cli_env)
            if channel:
                _quiet(["alerts", "channels", "rm", channel, "-w", w], cli_env)
        finally:
            if am is not None:
                am.stop()
    result = shown.latency
    for n in result.notifications:
        print("   " + format_line(AlertNotification.model_validate(n)))
    for line in result.lines():
        print("   " + line)
    counts = result.statuses()
    shown.good = counts.get("firing", 0) >= 1 and counts.get("resolved", 0) >= 1
    if not shown.good:
        print("INCOMPLETE: no alert fired and resolved", file=sys.stderr)
    if am is not None:
        shown.good = _report_alertmanager(shown, port) and shown.good
        print("   Alertmanager stopped (`learnstream alerts channels add NAME -w W --kind alertmanager --url URL` "
              "points a workspace at yours; LEARNSTREAM_ALERTMANAGER_URL gives every workspace one)")
    return shown


def _quiet(args: list[str], env: dict[str, str]) -> None:
    """Clean-up with the CLI; only a failure is shown."""
    done = subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        print(f"   (clean-up `learnstream {shlex.join(args)}` failed: {done.stderr.strip()})", file=sys.stderr)


async def _watch_alertmanager(url: str, rule_id: str, done: asyncio.Event, shown: AlertsShown) -> None:
    """Poll Alertmanager's alerts of the rule until `done` and then until none is left open (at most 15 s):
    each alert as last seen while listed, and which left the list (resolved: its endsAt has passed)."""
    import aiohttp

    seen: dict[tuple[str, str], dict] = {}
    params = {"filter": f'rule_id="{rule_id}"'}
    deadline = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while True:
            try:
                async with http.get(f"{url}/api/v2/alerts", params=params) as resp:
                    listed = await resp.json() if resp.status == 200 else None
            except (TimeoutError, aiohttp.ClientError):
                listed = None
            if listed is not None:
                now = {(a["labels"].get("fingerprint", ""), a["startsAt"]): a for a in listed}
                for key in seen.keys() - now.keys():
                    shown.alertmanager_resolved.add(key)
                seen.update(now)
                if done.is_set() and not now:
                    break
            if done.is_set():
                deadline = deadline or asyncio.get_running_loop().time() + 15
                if asyncio.get_running_loop().time() > deadline:
                    break
            await asyncio.sleep(0.2)
    shown.alertmanager_alerts = sorted(seen.values(), key=lambda a: (a["startsAt"], a["labels"].get("host", "")))


def _report_alertmanager(shown: AlertsShown, port: int) -> bool:
    alerts = shown.alertmanager_alerts
    m = scrape(port)
    delivered = int(total(m, "learnstream_alert_deliveries_total", channel_kind="alertmanager", outcome="delivered"))
    dead = int(total(m, "learnstream_alert_deliveries_total", channel_kind="alertmanager", outcome="dead_lettered"))
    print(f"   the worker delivered {delivered} notifications (firing and resolved) to channel {DEMO_CHANNEL} "
          f"(kind alertmanager), {dead} dead-lettered")
    print(f"   Alertmanager's alerts (GET {shown.alertmanager_url}/api/v2/alerts) while they were open: {len(alerts)}"
          + (f"; labels on each: workspace_id={alerts[0]['labels'].get('workspace_id')} "
             f"rule_id={alerts[0]['labels'].get('rule_id')}" if alerts else ""))
    for a in alerts:
        labels = {k: v for k, v in sorted(a["labels"].items()) if k not in ("alertname", "severity", "workspace_id",
                                                                             "rule_id")}
        key = (a["labels"].get("fingerprint", ""), a["startsAt"])
        print(f"      alertname={a['labels'].get('alertname')!r} severity={a['labels'].get('severity')} "
              + " ".join(f"{k}={v}" for k, v in labels.items())
              + f" startsAt={a['startsAt']} state={a['status']['state']} -> "
              + ("resolved (left the active alerts)" if key in shown.alertmanager_resolved else "still open"))
    named = [a for a in alerts if a["labels"].get("alertname") == shown.rule_name]
    good = bool(named) and bool(shown.alertmanager_resolved) and dead == 0
    if not good:
        print("INCOMPLETE: Alertmanager did not get the rule's alert firing and then resolved", file=sys.stderr)
    return good


#: the domain tables the demo reports the rows of
DOMAIN_TABLES = ["content", "media_files", "post_media_links", "connectors", "audience_growth",
                 "audience_demographics", "audience_interests", "competitor_profiles", "competitor_metrics",
                 "ml_models", "training_datasets", "model_training_sessions", "predictions", "prediction_accuracy",
                 "identified_patterns", "pattern_occurrences", "ab_testing_experiments", "ab_testing_assignments",
                 "evolution_experiments", "evolution_generations", "evolution_individuals", "content_style_analysis",
                 "trend_analysis", "ai_improvement_tracking", "ai_context_logs", "ai_prompts", "ai_suggestions",
                 "embeddings", "parked_events"]


def _domain(settings: Settings, port: int, seed: int, learning_events: int = 4000) -> bool:
    from db.domain import summary
    from streams.devkit.mix import MixGenerator

    mix = MixGenerator(seed=seed).generate(learning_events, array_size=100)
    print(f"\n8. the domain: {mix.events['content_item']} content items, {mix.events['account_snapshot']} account "
          f"snapshots (own accounts and competitors, a week of days), {mix.events['engagement_update']} engagement "
          f"updates of those posts and {mix.events['learning_event']} learning events of {len(mix.by_type)} types, "
          "routed into their tables in the transaction that logs them")
    before = scrape(port)
    base = {k: total(before, "learnstream_events_consumed_total", topic=settings.source_topics[k]) for k in mix.messages}

    async def publish() -> None:
        for kind in ("account_snapshot", "content_item", "engagement_update", "learning_event"):
            await publish_messages(settings.kafka_bootstrap, settings.source_topics[kind], mix.messages[kind],
                                   auth=principal_auth("producer"))

    asyncio.run(publish())
    deadline = time.monotonic() + 180
    while True:
        m = scrape(port)
        done = all(total(m, "learnstream_events_consumed_total", topic=settings.source_topics[k]) - base[k] >= n
                   for k, n in mix.events.items())
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    async def show() -> list[str]:
        conn = await connect(settings.database_url)
        try:
            counts = await summary.table_counts(conn, DOMAIN_TABLES)
            lines = ["   rows: " + ", ".join(f"{t} {n}" for t, n in counts.items())]
            lines.append("   top patterns by success rate's 95 % lower bound (at least 5 judged occurrences):")
            for r in await summary.top_patterns(conn):
                lines.append(f"      {r['pattern_type']}/{r['pattern_name']} (workspace {str(r['workspace_id'])[:8]}): "
                             f"{r['success_rate']:.0f}% of "
                             f"{r['occurrence_frequency']} occurrences, mean engagement {r['average_engagement']:.0f}")
            c = await summary.training_curve(conn)
            if c:
                curve = " ".join(f"{p['epoch']}:{p['loss']:.3f}" for p in c["loss_history"] if "loss" in p)
                lines.append(f"   training of {c['name']} {c['version']}: {c['status']}, epoch {c['current_epoch']}/"
                             f"{c['total_epochs']}, loss by epoch {curve}")
            for r in await summary.prediction_accuracy(conn):
                lines.append(f"   prediction accuracy of {r['name']} {r['version']}: {r['accuracy']:.1f}% over {r['n']} "
                             f"outcomes (mean absolute error {r['mae']:.1f})")
            a = await summary.ab_arms(conn)
            if a:
                arms = "; ".join(f"{v}: {x['assigned']} assigned, {x['converted']}/{x['judged']} converted"
                                 for v, x in sorted(a["results"].items()))
                lines.append(f"   A/B '{a['experiment_name']}' ({a['status']}, {a['current_sample_size']} subjects): {arms}")
            for r in await summary.competitor_growth(conn):
                change = 100 * (r["last"] - r["first"]) / r["first"] if r["first"] else 0
                lines.append(f"   competitor {r['name']} ({r['platform']}): {r['first']:,} -> {r['last']:,} followers "
                             f"from {r['since']} to {r['until']} ({change:+.1f}%)")
            return lines
        finally:
            await conn.close()

    print("\n".join(asyncio.run(show())))
    if not done:
        print("INCOMPLETE: the domain mix was not consumed in time", file=sys.stderr)
    return done


def _jobs(settings: Settings) -> bool:
    """Run every scheduled job once, now, on the demo data, and show what they computed."""
    from streams.jobs.catalog import JOBS, ONCE_ORDER, once_period
    from streams.jobs.runner import JobRunner

    print("\n9. jobs (a worker runs them on their schedules, one worker at a time; the demo's worker leaves them to "
          "this step, which runs each once, now):")

    async def run_all() -> tuple[list[str], bool]:
        runner = JobRunner(settings.database_url, JOBS)
        lines, good = [], True
        for name in ONCE_ORDER:
            r = await runner.run(name, period=once_period(name, datetime.now(UTC)))
            good = good and r.status == "succeeded"
            lines.append(f"   {name:<28} {r.status:<10} {r.rows if r.rows is not None else '-':>6} rows  {r.seconds:6.2f} s"
                         + (f"  {r.error or r.why}" if r.status != "succeeded" else ""))
        conn = await connect(settings.database_url)
        try:
            lines.extend(await analytics_lines(conn))
        finally:
            await conn.close()
        return lines, good

    lines, good = asyncio.run(run_all())
    print("\n".join(lines))
    if not good:
        print("INCOMPLETE: a job failed", file=sys.stderr)
    return good


async def analytics_lines(conn) -> list[str]:
    """What the jobs computed for the busiest workspace, as `learnstream analytics …` prints it (the
    same queries, db/analytics/read.py, and the same table)."""
    from db.analytics import read
    from streams.analytics.cli import show

    workspace = await read.busiest_workspace(conn)
    if workspace is None:
        return ["   nothing computed to show (no workspace has posting times or trends)"]
    lines = [f"   what they computed, read without SQL, for workspace {workspace}:"]
    for command, table in (
            ("posting-times --top 3", await read.posting_times(conn, workspace, top=3)),
            ("trends --limit 5", await read.trends(conn, workspace, limit=5)),
            ("benchmarks", await read.benchmarks(conn, workspace)),
            ("accuracy", await read.accuracy(conn, workspace))):
        lines.append(f"   $ learnstream analytics {command} --workspace {workspace}")
        lines.extend("     " + line for line in show(table, "table", hide=("workspace_id",)).splitlines())
    return lines


def _report(settings: Settings) -> bool:
    """Add a custom report (with a weekly schedule) for the busiest workspace, run it, show its files."""
    from db.reports import store
    from schemas.reports import ReportDefinition
    from streams.reports.runner import run_report

    print("\n10. a custom report (`learnstream reports add|run|show`; a worker's `reports` job runs the scheduled ones):")
    today = datetime.now(UTC).date()
    definition = ReportDefinition.model_validate({
        "name": "Demo: daily engagement by platform", "formats": ["csv", "html"],
        "description": "what the demo's posts gained each day (from their engagement snapshots)",
        "schedule": {"cron": "0 8 * * 1", "timezone": "UTC"},
        "query": {"source": "engagement", "metrics": ["views", "posts", "interactions", "engagement_rate"],
                  "dimensions": ["day", "platform"],
                  "period": {"start": (today - timedelta(days=6)).isoformat(),
                             "end": (today + timedelta(days=1)).isoformat()}}})

    async def go():
        conn = await connect(settings.database_url)
        try:
            workspace = await conn.fetchval(
                "SELECT workspace_id FROM content_performance_metrics GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
            if workspace is None:
                return None, []
            for old in await store.list_reports(conn, workspace):
                if old["name"] == definition.name:  # a demo run before this one
                    await store.remove_report(conn, workspace, old["id"])
            await store.add_report(conn, workspace, definition, definition.schedule.next_after(datetime.now(UTC)))
            report = await store.find_report(conn, definition.name, workspace)
            return report, await run_report(conn, report, at=datetime.now(UTC), out_dir=settings.reports_dir)
        finally:
            await conn.close()

    report, done = asyncio.run(go())
    if report is None:
        print("INCOMPLETE: no engagement stored to report on", file=sys.stderr)
        return False
    print(f"   report {report['name']!r} of workspace {report['workspace_id']}: views, posts, interactions and "
          "engagement rate by day and platform, the last 7 days; scheduled Mondays 08:00 UTC")
    good = bool(done) and all(e.status == "completed" for e in done)
    for e in done:
        print(f"   {e.format:<4} {e.status} {e.rows if e.rows is not None else '-'} rows in {e.seconds:.2f} s -> "
              f"{e.path or e.error}")
    csv_file = next((e.path for e in done if e.format == "csv" and e.path), None)
    if csv_file:
        lines = csv_file.read_text().splitlines()
        print("   " + "\n   ".join(lines[:6]) + (f"\n   ... ({len(lines) - 1} rows)" if len(lines) > 6 else ""))
    html_file = next((e.path for e in done if e.format == "html" and e.path), None)
    if html_file:
        print(f"   open the HTML report (table and chart) in a browser: {html_file.as_uri()}")
    if not good:
        print("INCOMPLETE: the report failed", file=sys.stderr)
    return good



DEMO_VIEWER = "demo_viewer"


def _tenants(settings: Settings) -> bool:
    """Workspaces registered from the events, a viewer login that sees one of them (however it asks), the audit
    trail of that grant, and what retention would do now (dry run)."""
    import secrets

    import asyncpg

    from db.audit import tail
    from db.databases import dsn_as
    from db.workspaces import grant_access, list_workspaces
    from streams.maintenance.runner import describe, run_maintenance

    print("\n11. tenants, access and retention (`learnstream workspaces|access|audit|maintenance`):")

    async def go() -> bool:
        conn = await connect(admin_dsn(settings))  # `access grant` is the operators': the schema owner's login
        try:
            spaces = await list_workspaces(conn)
            by = {}
            for w in spaces:
                by[w["registration"]] = by.get(w["registration"], 0) + 1
            print(f"   {len(spaces)} workspaces, registered " + ", ".join(f"{k}: {v}" for k, v in sorted(by.items()))
                  + " (auto = on first sight of their events)")
            busiest = await conn.fetchval(
                "SELECT workspace_id FROM learning_events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
            if busiest is None:
                print("INCOMPLETE: no learning events stored", file=sys.stderr)
                return False
            password = secrets.token_urlsafe(18)  # a new one each demo: only this run knows it
            await grant_access(conn, DEMO_VIEWER, busiest, "viewer", password)
            everyone = await conn.fetchval("SELECT count(*) FROM learning_events")
            viewer = await asyncpg.connect(dsn_as(settings.database_url, DEMO_VIEWER, password))
            try:
                mine = await viewer.fetchval("SELECT count(*) FROM learning_events")
                other = await conn.fetchval("SELECT workspace_id FROM learning_events WHERE workspace_id <> $1 LIMIT 1",
                                            busiest)
                await viewer.execute(f"SET learnstream.workspace_id = '{other}'")
                still = await viewer.fetchval("SELECT count(DISTINCT workspace_id) FROM learning_events")
                denied = ""
                try:
                    await viewer.execute("SET ROLE learnstream_owner")
                except asyncpg.InsufficientPrivilegeError as exc:
                    denied = str(exc)
            finally:
                await viewer.close()
            print(f"   login {DEMO_VIEWER} (viewer of {busiest}) reads {mine} of the {everyone} learning events; after "
                  f"SET learnstream.workspace_id to another workspace it still sees {still} workspace; "
                  f"SET ROLE learnstream_owner: {denied or 'ALLOWED (wrong)'}")
            for r in await tail(conn, 1, busiest, "workspace_members"):
                print(f"   audit: {r['at']:%H:%M:%S}Z {r['actor']} {r['operation']} {r['table_name']} "
                      f"{dict(r['row_key'])} role={(r['new_values'] or {}).get('role')}")
            report = await run_maintenance(conn, dry_run=True, settings=settings)
            print("   retention (`learnstream maintenance run --dry-run`): " + describe(report)[-1])
            return mine > 0 and mine < everyone and still == 1 and bool(denied) and report.status == "succeeded"
        finally:
            await conn.close()

    good = asyncio.run(go())
    if not good:
        print("INCOMPLETE: the tenants step did not show isolation", file=sys.stderr)
    return good

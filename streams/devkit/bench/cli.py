"""`learnstream bench` command."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from streams.config import admin_dsn, load_settings
from streams.devkit.bench.runner import PIPELINES, Bench, Plan, table, windows_table, write_json

DEFAULT_MIX = "learning_event=0.6,performance_sample=0.3,engagement_update=0.1"


def parse_mix(text: str) -> dict[str, float]:
    """`kind=share,...` -> each kind's fraction of the events (shares normalised to 1)."""
    out = {}
    for part in text.split(","):
        kind, _, share = part.partition("=")
        if kind.strip() not in ("learning_event", "performance_sample", "engagement_update"):
            raise click.BadParameter(f"unknown event kind {kind!r}")
        out[kind.strip()] = float(share)
    total = sum(out.values())
    return {k: v / total for k, v in out.items()}


def worker_env_of(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--set NAME=VALUE` pairs -> the worker's LEARNSTREAM_NAME environment."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r}: expected NAME=VALUE", param_hint="--set")
        env[f"LEARNSTREAM_{name.strip().upper()}"] = value
    return env


@click.command("bench")
@click.option("--events", type=int, default=200_000, show_default=True, help="events per shape (all topics together)")
@click.option("--shape", "shapes", type=click.Choice(["arrays", "single"]), multiple=True,
              default=("arrays", "single"), show_default=True,
              help="arrays = 1,000-event messages, single = one event per message; repeat for both")
@click.option("--pipeline", "pipelines", type=click.Choice(list(PIPELINES)), multiple=True,
              default=tuple(PIPELINES), show_default=True, help="pipelines to run, in this order")
@click.option("--mix", default=DEFAULT_MIX, show_default=True, help="share of each event kind")
@click.option("--seed", type=int, default=42, show_default=True, help="workload generator seed")
@click.option("--invalid-share", type=float, default=0.01, show_default=True)
@click.option("--timeout", "timeout_s", type=float, default=180.0, show_default=True,
              help="seconds a pipeline may take to drain the workload before it is reported as partial")
@click.option("--latency-rate", type=int, default=1000, show_default=True,
              help="events/s of the paced stream that measures latency")
@click.option("--latency-seconds", type=float, default=5.0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("bench-results"),
              show_default=True, help="where the JSON results go")
@click.option("--write-path", is_flag=True,
              help="instead: measure only the write path (decode, rows, COPY variants) on fresh databases")
@click.option("--set", "settings_", multiple=True, metavar="NAME=VALUE",
              help="a setting for the learnstream pipeline, e.g. --set batch_max_events=2000 (repeatable)")
@click.option("--profile", is_flag=True, help="record the learnstream pipeline with py-spy and print its top functions")
@click.option("--windows-close", is_flag=True,
              help="event times spread over 2 s instead of 60 s (all pipelines), learnstream on windows scaled "
              "alike (2 s tumbling, 10 s hopping by 2 s, grace 2 s, idle 0.5 s; --set overrides), and after its last "
              "row the run waits until every window is closed and stored: reports windows closed, rollup rows, "
              "late events, time from the last row to the last window stored, CPU s at both, the idle CPU rate, "
              "and the window stage's CPU and throughput cost against ingest-only")
@click.option("--alerts", is_flag=True,
              help="instead: measure alert latency (window closed -> notification, sample -> notification) on a live stream")
@click.option("--alert-window", type=float, default=5.0, show_default=True, help="with --alerts: tumbling window seconds")
@click.option("--alert-series", type=int, default=20, show_default=True, help="with --alerts: series (hosts) spiking")
@click.option("--alert-cycles", type=int, default=4, show_default=True, help="with --alerts: spike windows per series")
@click.option("--backfill", type=int, default=None, metavar="N",
              help="instead: a backfill of N history events of one workspace (all late): events/s, windows "
              "corrected, time to recompute them, peak worker RSS")
@click.option("--backfill-days", type=float, default=90.0, show_default=True, help="with --backfill: days of history")
@click.option("--domain", type=int, default=None, metavar="N",
              help="instead: N learning events of the routed mix (all 19 types, with content items and account "
              "snapshots), routed into the domain tables vs the same with routing off (raw-only), per --shape")
@click.option("--routing", type=int, default=None, metavar="N",
              help="instead: N learning events of the routed mix written without Kafka by the write path, family "
              "by family, routing on vs off on fresh databases: each table family's routing cost in µs/event")
@click.option("--routing-batch", type=int, default=5000, show_default=True,
              help="with --routing: events per batch, cut from the stream as the worker cuts it")
@click.option("--jobs", "job_scales", default=None, metavar="S[,S...]",
              help="instead: each scheduled job's run time on S times the demo's data (fresh databases), e.g. 1,10")
@click.option("--workers", "worker_counts", default=None, metavar="N[,N...]",
              help="instead: the workload (--events, --shape, --mix) on N `learnstream worker` processes of one "
              "group, for each N (fresh database, topics and group each): events/s, x 1 worker, efficiency, CPU "
              "seconds of the workers, PostgreSQL and Kafka, machine CPU %, e.g. 1,2,3")
@click.option("--partitions", type=click.IntRange(min=1), default=None,
              help="partitions of every topic the bench makes  [default: 12 with --workers, else 8]")
@click.option("--soak", is_flag=True,
              help="instead: one worker under a steady paced load (--soak-rate, --soak-seconds, the first --shape): "
              "is its RSS flat, what is event->row latency")
@click.option("--soak-rate", type=int, default=5000, show_default=True,
              help="with --soak: events/s (all topics together); half the measured maximum is the habit")
@click.option("--soak-seconds", type=float, default=600.0, show_default=True, help="with --soak: how long")
@click.option("--soak-tenants", type=int, default=None, metavar="N",
              help="instead: waves of N single-event samples, each from a workspace not seen before, on short "
              "windows; the worker's RSS at the start, at each wave's peak and after its windows closed")
@click.option("--soak-waves", type=int, default=2, show_default=True, help="with --soak-tenants: how many waves")
@click.option("--soak-settle", type=float, default=30.0, show_default=True,
              help="with --soak-tenants: seconds after a wave's windows closed before its RSS is taken")
def bench(events, shapes, pipelines, mix, seed, invalid_share, timeout_s, latency_rate, latency_seconds, out_dir,
          settings_, profile, windows_close, write_path, alerts, alert_window, alert_series, alert_cycles, backfill,
          backfill_days, domain, routing, routing_batch, job_scales, worker_counts, partitions, soak, soak_rate,
          soak_seconds, soak_tenants, soak_waves, soak_settle) -> None:
    """Measure the pipeline against its limit and its peers, on the same data.

    Pre-loads a seeded workload (three topics, with a small share of invalid events) into Kafka,
    then runs each pipeline on it in turn, each with its own consumer group and database:
    limit (aiokafka + COPY, no validation), learnstream (the worker as shipped), naive-faust
    (one INSERT per event) and quix (Quix Streams with its PostgreSQL sink). Prints events/s
    (first row to last row committed), the ratio to the limit, event->row latency under a paced
    stream, peak RSS and CPU seconds; writes the same as JSON. Uses the services of
    `learnstream services up` (or LEARNSTREAM_*); needs the `bench` extra for quix.
    """
    from streams.devkit.services import principal_env, up

    for k, v in up().items():
        os.environ.setdefault(k, v)
    # the bench is an operator tool (its topics, groups and app ids vary): the admin principal
    os.environ.update(principal_env("admin"))
    if alerts:
        from streams.devkit.bench.alerts import run_alert_bench

        click.echo(f"alert latency: rule api_latency.max > 100 over {alert_window:g} s tumbling windows (grace 1 s), "
                   f"{alert_series} series, 5 samples/s each, {alert_cycles} spike windows per series")
        result = run_alert_bench(load_settings(), window_s=alert_window, grace_s=1.0, series=alert_series,
                                 cycles=alert_cycles, rate_hz=5.0, log_dir=out_dir)
        for line in result.lines():
            click.echo(line)
        return
    if soak_tenants:
        from streams.devkit.bench.tenants import run_tenants_bench

        result = run_tenants_bench(load_settings(), tenants=soak_tenants, waves=soak_waves, settle_s=soak_settle,
                                   log_dir=out_dir, worker_settings=worker_env_of(settings_))
        for line in result.lines():
            click.echo(line)
        path = out_dir / f"soak-tenants-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_bytes(orjson.dumps(result.as_json(), option=orjson.OPT_INDENT_2))
        click.echo(f"samples (seconds, RSS MB, open panes) written to {path}")
        return
    if soak:
        from streams.devkit.bench.soak import run_soak_bench

        result = run_soak_bench(load_settings(), rate=soak_rate, seconds=soak_seconds, shape=shapes[0], seed=seed,
                                log_dir=out_dir, worker_settings=worker_env_of(settings_))
        for line in result.lines():
            click.echo(line)
        path = out_dir / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_bytes(orjson.dumps(result.as_json(), option=orjson.OPT_INDENT_2))
        click.echo(f"samples (seconds, RSS MB, rows) written to {path}")
        return
    if backfill:
        from streams.devkit.bench.backfill import run_backfill_bench

        result = run_backfill_bench(load_settings(), events=backfill, days=backfill_days, seed=seed, log_dir=out_dir)
        for line in result.lines():
            click.echo(line)
        return
    if job_scales:
        from streams.devkit.bench.jobs import run_jobs_bench
        from streams.devkit.bench.jobs import table as jobs_table

        try:
            scales = [int(x) for x in job_scales.split(",")]
        except ValueError:
            raise click.BadParameter(f"{job_scales!r}: scales are integers, e.g. 1,10", param_hint="--jobs") from None
        results = asyncio.run(run_jobs_bench(admin_dsn(load_settings()), scales, seed, out_dir / "reports"))
        click.echo(jobs_table(results))
        return
    if worker_counts:
        from streams.devkit.bench.scaling import as_json, run_scaling_bench
        from streams.devkit.bench.scaling import table as scaling_table

        try:
            counts = [int(x) for x in worker_counts.split(",")]
        except ValueError:
            counts = []
        if not counts or min(counts) < 1:
            raise click.BadParameter(f"{worker_counts!r}: worker counts are integers >= 1, e.g. 1,2,3",
                                     param_hint="--workers")
        results = run_scaling_bench(load_settings(), workers=counts, partitions=partitions or 12, events=events,
                                    shapes=list(shapes), mix=parse_mix(mix), seed=seed, invalid_share=invalid_share,
                                    timeout_s=timeout_s, log_dir=out_dir, worker_settings=worker_env_of(settings_))
        click.echo("\n" + scaling_table(results))
        path = out_dir / f"workers-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_bytes(orjson.dumps({"machine": {"cpus": os.cpu_count()}, "events": events, "seed": seed,
                                       "results": as_json(results)}, option=orjson.OPT_INDENT_2))
        click.echo(f"\nresults written to {path}")
        return
    if domain:
        from streams.devkit.bench.domain import run_domain_bench
        from streams.devkit.bench.domain import table as domain_table

        results = run_domain_bench(load_settings(), events=domain, shapes=tuple(shapes), seed=seed, log_dir=out_dir,
                                   timeout_s=timeout_s)
        click.echo("\n" + domain_table(results))
        return
    if routing:
        from streams.devkit.bench.routing import as_json, run_routing_bench
        from streams.devkit.bench.routing import table as routing_table

        click.echo(f"routing per family: {routing:,} learning events of the routed mix, {routing_batch:,}-event batches")
        results = asyncio.run(run_routing_bench(admin_dsn(load_settings()), routing, seed, routing_batch))
        click.echo("\n" + routing_table(results))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"routing-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_bytes(orjson.dumps(as_json(results, routing, seed, routing_batch), option=orjson.OPT_INDENT_2))
        click.echo(f"results written to {path}")
        return
    if write_path:
        from streams.devkit.bench.writepath import run

        for label, rate in asyncio.run(run(admin_dsn(load_settings()), events=events)):
            click.echo(f"{rate:>12,.0f}  {label}")
        return
    plan = Plan(events=events, shapes=list(shapes), pipelines=list(pipelines), mix=parse_mix(mix), seed=seed,
                invalid_share=invalid_share, timeout_s=timeout_s, latency_rate=latency_rate,
                latency_seconds=latency_seconds, partitions=partitions or 8, out_dir=out_dir, profile=profile,
                windows_close=windows_close,
                worker_env=worker_env_of(settings_))
    results = asyncio.run(Bench(load_settings(), plan).run())
    click.echo("\n" + table(results))
    closing = windows_table(results)
    if closing:
        click.echo("\nwindows closed (learnstream, --windows-close):\n" + closing)
    click.echo(f"\nresults written to {write_json(plan, results)}")

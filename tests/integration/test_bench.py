"""`learnstream bench` on the real services, small: the harness measures what it claims."""

from __future__ import annotations

import json

import pytest

from streams.config import Settings
from streams.devkit.bench.runner import Bench, Plan, table, windows_table, write_json
from tests.support import admin_dsn

pytestmark = pytest.mark.services


async def test_bench_runs_limit_and_learnstream_and_reports_them(services, tmp_path):
    settings = Settings(
        kafka_bootstrap=services["LEARNSTREAM_KAFKA_BOOTSTRAP"], database_url=services["LEARNSTREAM_DATABASE_URL"],
        admin_database_url=services.get("LEARNSTREAM_ADMIN_DATABASE_URL"),
    )
    plan = Plan(events=4000, shapes=["arrays"], pipelines=["limit", "learnstream"],
                mix={"learning_event": 0.5, "performance_sample": 0.5}, timeout_s=120,
                latency_rate=500, latency_seconds=1.0, out_dir=tmp_path, partitions=2)
    results = await Bench(settings, plan).run()
    assert [r.pipeline for r in results] == ["limit", "learnstream"]
    limit, ours = results
    # learnstream stores exactly the valid distinct events; limit stores what it can parse
    # (it keeps naive timestamps as UTC, so it may store a few more)
    assert ours.complete and limit.complete
    expected_valid = ours.rows
    assert 3900 <= expected_valid < 4000
    assert limit.rows >= expected_valid
    for r in results:
        assert r.events_per_s > 0 and r.seconds > 0 and r.cpu_s > 0 and r.peak_rss_mb > 20
        assert r.latency_p50_ms is not None and 0 < r.latency_p50_ms <= r.latency_p99_ms
    assert limit.ratio_to_limit == 1.0
    assert ours.ratio_to_limit == pytest.approx(ours.events_per_s / limit.events_per_s)
    assert ours.db_write_s is not None and ours.db_write_s > 0
    text = table(results)
    assert "learnstream" in text and "x limit" in text
    doc = json.loads(write_json(plan, results).read_text())
    assert [r["pipeline"] for r in doc["results"]] == ["limit", "learnstream"]
    assert doc["plan"]["events"] == 4000


async def test_bench_windows_close_waits_for_every_window_and_checks_the_rollups(services, tmp_path):
    settings = Settings(
        kafka_bootstrap=services["LEARNSTREAM_KAFKA_BOOTSTRAP"], database_url=services["LEARNSTREAM_DATABASE_URL"],
        admin_database_url=services.get("LEARNSTREAM_ADMIN_DATABASE_URL"),
    )
    # hopping windows of 4 s instead of 10: the last one closes sooner
    plan = Plan(events=2000, shapes=["arrays"], pipelines=["learnstream"],
                mix={"learning_event": 0.5, "performance_sample": 0.5}, timeout_s=120,
                latency_rate=500, latency_seconds=1.0, out_dir=tmp_path, partitions=2, windows_close=True,
                worker_env={"LEARNSTREAM_WINDOW_HOPPING_S": "4"})
    [r] = await Bench(settings, plan).run()
    assert r.complete and 1900 <= r.rows < 2000
    # every window stored, none set aside, and each stored row counted once per window holding it
    assert r.windows_closed > 0 and r.rollup_rows == r.windows_closed
    assert r.late_events == 0 and r.rollups_match, r.note
    assert r.close_s > 0 and r.cpu_to_last_window_s >= r.cpu_s > 0 and r.idle_cpu_per_s >= 0
    assert r.cpu_closed_s <= r.cpu_to_last_window_s
    assert "yes" in windows_table([r])
    doc = json.loads(write_json(plan, [r]).read_text())
    assert doc["plan"]["windows_close"] is True and doc["results"][0]["windows_closed"] == r.windows_closed


async def test_the_jobs_bench_runs_every_job_on_the_demos_data(services, tmp_path, monkeypatch):
    from streams.devkit.bench.jobs import run_jobs_bench
    from streams.devkit.bench.jobs import table as jobs_table
    from streams.jobs.catalog import JOBS

    monkeypatch.setenv("LEARNSTREAM_REPORTS_DIR", str(tmp_path))  # the bench sets it; restored after the test
    [r] = await run_jobs_bench(admin_dsn(services), [1], 42, tmp_path / "reports")
    assert set(r.jobs) == set(JOBS)
    assert all(status == "succeeded" for status, _, _ in r.jobs.values()), r.jobs
    assert r.rows_loaded > 60_000
    # every job computed something from the load (their exact figures are tested on hand-made fixtures in
    # tests/integration/jobs); one report per workspace in two formats, the five materialized views
    # (retention has nothing to do on fresh data)
    assert all(rows > 0 for job, (_, rows, _) in r.jobs.items() if job != "maintenance"), r.jobs
    assert r.jobs["maintenance"][1] == 0
    assert (r.jobs["reports"][1], r.jobs["refresh_materialized_views"][1]) == (4, 5)
    assert len(list((tmp_path / "reports").glob("*/*/*.html"))) == 2
    assert "1x rows" in jobs_table([r])


def test_the_workers_bench_stores_every_valid_event_once_for_each_worker_count(services, tmp_path):
    from streams.devkit.bench.scaling import as_json, run_scaling_bench
    from streams.devkit.bench.scaling import table as scaling_table

    settings = Settings(
        kafka_bootstrap=services["LEARNSTREAM_KAFKA_BOOTSTRAP"], database_url=services["LEARNSTREAM_DATABASE_URL"],
        admin_database_url=services.get("LEARNSTREAM_ADMIN_DATABASE_URL"),
    )
    # single-event messages: the run spans several of the bench's polls, so every CPU figure has a span
    results = run_scaling_bench(settings, workers=[1, 2], partitions=4, events=4000, shapes=["single"],
                                mix={"learning_event": 0.6, "performance_sample": 0.3, "engagement_update": 0.1},
                                seed=42, invalid_share=0.01, timeout_s=120, log_dir=tmp_path)
    assert [(r.shape, r.workers, r.partitions) for r in results] == [("single", 1, 4), ("single", 2, 4)]
    one, two = results
    # the same seeded workload for both: the same valid events, each stored exactly once
    assert one.valid == two.valid == 3957
    assert (one.rows, two.rows) == (one.valid, two.valid), (one.note, two.note)
    for r in results:
        assert r.events_per_s > 0 and r.seconds > 0 and r.note == ""
        assert len(r.worker_cpu_s) == r.workers and r.worker_cpu_sum > 0
        assert r.postgres_cpu_s is not None and r.postgres_cpu_s > 0
        assert r.kafka_cpu_s is not None and r.kafka_cpu_s >= 0
        assert 0 < r.machine_cpu_pct <= 100
    assert (one.speedup, one.efficiency) == (1.0, 1.0)
    assert two.speedup == pytest.approx(two.events_per_s / one.events_per_s)
    assert two.efficiency == pytest.approx(two.speedup / 2)
    header = scaling_table(results).splitlines()[0]
    for column in ("workers", "events/s", "x 1 worker", "efficiency", "worker CPU s", "PostgreSQL CPU s",
                   "Kafka CPU s", "machine CPU %", "rows"):
        assert column in header
    assert [(d["workers"], d["rows"], d["complete"]) for d in as_json(results)] == [(1, one.valid, True),
                                                                                   (2, two.valid, True)]


async def test_the_routing_bench_writes_each_family_routed_and_raw(services):
    from streams.devkit.bench.routing import FAMILIES, run_routing_bench
    from streams.devkit.bench.routing import table as routing_table
    from streams.devkit.mix import MixGenerator

    results = await run_routing_bench(admin_dsn(services), 2000, seed=42, batch=500)
    by_type = MixGenerator(seed=42, workspaces=8).generate(2000, array_size=1000, learning_span_min=1.0,
                                                           engagement=False).by_type
    assert [r.family for r in results] == [f for f, _, _ in FAMILIES]
    for r, (_, types, _) in zip(results, FAMILIES, strict=True):
        assert r.events == sum(by_type.get(t, 0) for t in types)
        # registrations come first, so nothing waits for a referent, and every event meets its contract
        assert (r.parked, r.unrouted) == (0, 0)
        assert r.routed_s > 0 and r.raw_s > 0 and 1 <= r.batches <= 4
    fam = {r.family: r for r in results}
    # 8 workspaces: two models, a dataset, an A/B and an evolution experiment each
    assert (fam["registrations"].events, fam["registrations"].domain_rows) == (40, 40)
    assert fam["predictions"].domain_rows == by_type["model_prediction"]  # one prediction per event
    assert fam["predictions"].statements_per_batch == 4.0  # park + insert + accuracy update + delete
    assert fam["sessions"].domain_rows == 8  # one training session per workspace
    assert "µs/event" in routing_table(results) and "embeddings" in routing_table(results)


def test_the_domain_bench_starts_its_workers_and_routes_the_mix(services, tmp_path, monkeypatch):
    """`bench --domain` spawns workers of its own (as --soak, --alerts and --backfill do, through
    bench.alerts.worker_env): they must reach the broker as the bench's principal (they did not, and
    the mode failed at its first worker without a test to say so)."""
    from streams.devkit.bench.domain import run_domain_bench
    from streams.devkit.services import principal_env

    for name, value in principal_env("admin").items():  # what `learnstream bench` sets for itself
        monkeypatch.setenv(name, value)
    settings = Settings(
        kafka_bootstrap=services["LEARNSTREAM_KAFKA_BOOTSTRAP"], database_url=services["LEARNSTREAM_DATABASE_URL"],
        admin_database_url=services.get("LEARNSTREAM_ADMIN_DATABASE_URL"),
    )
    results = run_domain_bench(settings, events=600, shapes=("arrays",), seed=42, log_dir=tmp_path, timeout_s=120)
    assert [(r.shape, r.mode) for r in results] == [("arrays", "raw-only"), ("arrays", "routed")]
    raw, routed = results
    # the same seeded mix both times, every learning event stored once
    assert raw.rows == routed.rows == raw.events > 0, (raw.note, routed.note)
    assert raw.domain_rows == 0 and routed.domain_rows > 0 and routed.parked == 0

"""`learnstream bench --jobs 1,10`: each job's run time on the demo's data and on multiples of it.

For each scale S a fresh database gets S times what `make demo` stores, written straight through
the writer (no Kafka: the jobs read tables, not topics): the synthetic workload (20,000 events per
topic), the domain mix of 2 workspaces and 4,000 learning events with their posts, accounts and
engagement (streams/devkit/mix.py, S x the workspaces and events), parked events resumed, ANALYZE
(what autovacuum does soon after a load), and one scheduled report per workspace due now (the demo's). Then every job
runs once, as the demo runs
them; the table gives each job's rows and seconds per scale.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from db.databases import create_migrated_database, drop_database
from db.domain.routing import resume_parked
from db.pool import create_writer_pool
from db.reports.store import add_report
from db.tables import SINKS
from db.writer import WritePolicy, write_rows
from schemas.decode import decode_message
from schemas.reports import ReportDefinition
from streams.devkit.mix import MixGenerator
from streams.devkit.synthetic import Generator
from streams.jobs.catalog import JOBS, ONCE_ORDER, once_period
from streams.jobs.runner import JobRunner

DEMO_EVENTS_PER_TOPIC = 20_000
DEMO_LEARNING_EVENTS = 4_000
DEMO_WORKSPACES = 2
BATCH = 5_000


@dataclass
class ScaleResult:
    scale: int
    rows_loaded: int
    load_s: float
    jobs: dict[str, tuple[str, int | None, float]] = field(default_factory=dict)  # name -> (status, rows, s)


def _report() -> ReportDefinition:
    today = datetime.now(UTC).date()
    return ReportDefinition.model_validate({
        "name": "daily engagement by platform", "formats": ["csv", "html"],
        "schedule": {"cron": "* * * * *"},
        "query": {"source": "engagement", "metrics": ["views", "posts", "interactions", "engagement_rate"],
                  "dimensions": ["day", "platform"],
                  "period": {"start": (today - timedelta(days=6)).isoformat(),
                             "end": (today + timedelta(days=1)).isoformat()}}})


async def load_demo_data(dsn: str, scale: int, seed: int) -> int:
    """Write `scale` x the demo's data; -> rows written."""
    gen = Generator(seed=seed)
    mixer = MixGenerator(seed=seed, workspaces=DEMO_WORKSPACES * scale)
    mix = mixer.generate(DEMO_LEARNING_EVENTS * scale, array_size=100)
    batches: list[tuple[str, list[bytes]]] = [
        (kind, [v for _, v in gen.workload(kind, DEMO_EVENTS_PER_TOPIC * scale, array_size=100, invalid_share=0,
                                            duplicate_share=0).messages])
        for kind in ("learning_event", "performance_sample", "engagement_update")]
    batches += [(kind, [v for _, v in mix.messages[kind]])
                for kind in ("account_snapshot", "content_item", "engagement_update", "learning_event")]
    pool = await create_writer_pool(dsn, 1)
    written = 0
    try:
        async with pool.acquire() as conn:
            policy = WritePolicy()
            for kind, values in batches:
                spec = SINKS[kind]
                rows = [spec.row(e) for v in values for e in decode_message(v, kind).events]
                for i in range(0, len(rows), BATCH):
                    result = await write_rows(conn, spec, rows[i:i + BATCH], policy)
                    written += result.inserted
            while True:
                taken, still, _failed = await resume_parked(conn)
                if not taken or still == taken:
                    break
            # the planner's statistics, as autovacuum would have gathered them by the jobs' next run (without
            # them, a fresh partition's plan can scan a workspace's rows per prediction: 5 s instead of 0.06 s)
            await conn.execute("ANALYZE")
            definition = _report()
            now = datetime.now(UTC)
            for ws in mixer.workspaces:
                await add_report(conn, uuid.UUID(ws), definition, now)
    finally:
        await pool.close()
    return written


async def run_jobs_bench(admin_dsn: str, scales: list[int], seed: int, reports_dir: Path) -> list[ScaleResult]:
    import os

    os.environ["LEARNSTREAM_REPORTS_DIR"] = str(reports_dir)  # the reports job reads its folder from the settings
    out = []
    for scale in scales:
        name = f"bench_jobs_{scale}x_{uuid.uuid4().hex[:6]}"
        dsn = await create_migrated_database(admin_dsn, name)
        try:
            t0 = time.perf_counter()
            rows = await load_demo_data(dsn, scale, seed)
            result = ScaleResult(scale, rows, time.perf_counter() - t0)
            runner = JobRunner(dsn, JOBS)
            for job in ONCE_ORDER:
                r = await runner.run(job, period=once_period(job, datetime.now(UTC)))
                result.jobs[job] = (r.status, r.rows, r.seconds)
            out.append(result)
        finally:
            await drop_database(admin_dsn, name)
    return out


def table(results: list[ScaleResult]) -> str:
    head = f"{'job':<28}" + "".join(f"{f'{r.scale}x rows':>12}{f'{r.scale}x s':>9}" for r in results)
    lines = [head, "-" * len(head)]
    for job in ONCE_ORDER:
        cells = ""
        for r in results:
            status, rows, seconds = r.jobs[job]
            cells += f"{rows if rows is not None else status:>12}{seconds:>9.2f}"
        lines.append(f"{job:<28}{cells}")
    lines.append("")
    lines += [f"{r.scale}x: {r.rows_loaded:,} rows loaded in {r.load_s:.1f} s" for r in results]
    return "\n".join(lines)

"""The `learnstream` command: help everywhere, one-line errors, publish and migrate for real."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT, free_port, kafka_kwargs


def run(*args: str, env: dict | None = None, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], cwd=ROOT, env=env, input=stdin,
        capture_output=True, timeout=timeout,
    )


def _commands() -> list[list[str]]:
    """Every registered command's path, the group itself first, walked from the click group."""
    import click

    from streams.cli import cli, register

    register()  # what main() does; registering again is a no-op
    found: list[list[str]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        found.append(path)
        if isinstance(cmd, click.Group):  # list_commands/get_command: the dev kit's plugged-in ones too
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), [*path, name])

    walk(cli, [])
    return found


def test_every_command_is_walked():
    commands = _commands()
    # the ones the hand list of old named, and those it missed
    for path in (["worker"], ["alerts", "channels", "rm"], ["reports", "fields"], ["maintenance", "run"],
                 ["workspaces"], ["access"], ["audit"], ["alerts", "rules"], ["demo"], ["bench"], ["services", "up"]):
        assert path in commands, path
    assert len(commands) > 31


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "learnstream")
def test_every_command_has_help(command):
    from click.testing import CliRunner

    from streams.cli import cli

    out = CliRunner().invoke(cli, [*command, "--help"], prog_name="learnstream")
    assert out.exit_code == 0, out.output
    assert "Usage: learnstream" in out.stdout
    assert len(out.stdout.split("\n")) > 4


def test_the_entry_point_has_help():
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert b"Usage: learnstream" in out.stdout
    assert len(out.stdout.decode().split("\n")) > 4


@pytest.mark.services
def test_worker_exits_nonzero_with_one_line_when_kafka_is_unreachable(stack):
    env = stack.env(LEARNSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    out = run("worker", env=env)
    assert out.returncode == 2
    err = out.stderr.decode()
    assert "learnstream: error: cannot reach Kafka at 127.0.0.1:" in err
    assert "Traceback" not in err


@pytest.mark.services
def test_migrate_reports_a_refused_database_in_one_line(stack):
    nowhere = f"postgresql://nobody:x@127.0.0.1:{free_port()}/none"
    env = stack.env(LEARNSTREAM_DATABASE_URL=nowhere, LEARNSTREAM_ADMIN_DATABASE_URL=nowhere)
    out = run("migrate", env=env)
    assert out.returncode == 2
    assert out.stderr.decode().startswith("learnstream: error:")
    assert "Traceback" not in out.stderr.decode()


@pytest.mark.services
def test_migrate_twice_is_a_no_op(stack):
    out = run("migrate", env=stack.env())
    assert out.returncode == 0, out.stderr
    assert b"schema is current; nothing to apply" in out.stdout


@pytest.mark.services
async def test_publish_packs_jsonl_into_arrays_and_validates(stack):
    import orjson

    from streams.devkit.synthetic import Generator
    from streams.topics import ensure_topics

    g = Generator(seed=8)
    topic = stack.topics["learning_event"]
    await ensure_topics(stack.bootstrap, [topic], 1)
    events = [g.learning_event() for _ in range(25)]
    for e in events:
        e["workspace_id"] = events[0]["workspace_id"]
    lines = [orjson.dumps(e) for e in events]
    bad = dict(events[0], timestamp="2026-01-01T00:00:00")
    jsonl = b"\n".join([*lines[:10], orjson.dumps(bad), *lines[10:]]) + b"\n"

    out = run("publish", topic, "-", "--array-size", "10", "--validate", env=stack.env(), stdin=jsonl)
    assert out.returncode == 1  # one line refused
    assert b"line 11: naive_timestamp: timestamp:" in out.stderr
    assert b"published 25 events in 3 messages" in out.stdout

    # read the raw messages back: arrays of 10, 10, 5, keyed by the workspace
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.bootstrap, **kafka_kwargs(), auto_offset_reset="earliest")
    await consumer.start()
    try:
        got = []
        while len(got) < 3:
            for recs in (await consumer.getmany(timeout_ms=1000)).values():
                got.extend(recs)
    finally:
        await consumer.stop()
    assert [len(orjson.loads(r.value)) for r in got] == [10, 10, 5]
    assert {r.key for r in got} == {events[0]["workspace_id"].encode()}
    assert [e["event_id"] for r in got for e in orjson.loads(r.value)] == [e["event_id"] for e in events]


def test_publish_validates_the_domain_topics_by_their_contracts(stack):
    import orjson

    from streams.devkit.mix import MixGenerator

    mix = MixGenerator(seed=4, workspaces=1).generate(60, array_size=1)
    items = [orjson.loads(v) for _, v in mix.messages["content_item"][:4]]
    items[2]["media"] = [{"url": "https://x/1", "media_type": "hologram"}]
    jsonl = b"\n".join(orjson.dumps(i) for i in items) + b"\n"
    out = run("publish", stack.domain_topics["content_item"], "-", "--validate", env=stack.env(), stdin=jsonl)
    assert out.returncode == 1
    assert b"line 3: schema: media.0.media_type:" in out.stderr
    assert b"published 3 events in 3 messages" in out.stdout


def test_jobs_list_and_run(stack):
    out = run("jobs", "run", "refresh_materialized_views", env=stack.env())
    assert out.returncode == 0, out.stderr
    assert b"refresh_materialized_views: 5 rows in" in out.stdout
    out = run("jobs", "list", "--runs", "5", env=stack.env())
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "prediction_accuracy" in text and "*/15 * * * *" in text
    assert "last succeeded" in text and " manual    succeeded        5 rows" in text
    out = run("jobs", "run", "no_such_job", env=stack.env())
    assert out.returncode == 2 and b"no job 'no_such_job'" in out.stderr
    out = run("jobs", "run", "model_accuracy_daily", "--for", "2026-12-02/2026-12-01", env=stack.env())
    assert out.returncode == 2 and b"its end is not after its start" in out.stderr

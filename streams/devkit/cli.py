"""`learnstream demo`: the dev kit's own command (bench and services have theirs in their packages)."""

from __future__ import annotations

import sys

import click

from streams.cli_support import expected_failures


@click.command("demo")
@click.option("--events", type=int, default=20000, show_default=True, help="events per topic")
@click.option("--seed", type=int, default=42, show_default=True)
@expected_failures
def demo(events: int, seed: int) -> None:
    """Run the whole job once on the local services and show what happened.

    Brings the services up (or uses LEARNSTREAM_* ones), migrates, starts a worker, publishes a
    realistic synthetic workload (single events and arrays, duplicates and some bad input) to the
    three topics, waits until everything is stored or dead-lettered, and prints a summary.
    """
    from streams.devkit.demo import run_demo

    sys.exit(run_demo(events_per_topic=events, seed=seed))

"""Pieces of `learnstream bench` that need no services."""

from __future__ import annotations

import click
import pytest

from streams.devkit.bench.cli import parse_mix, worker_env_of
from streams.devkit.bench.profile import summarize


def test_profile_summary_counts_self_and_inclusive_shares(tmp_path):
    raw = tmp_path / "p.raw"
    raw.write_text(
        "MainThread;main (cli.py:1);process (sink.py:10);validate_json (type_adapter.py:5) 6\n"
        "MainThread;main (cli.py:1);process (sink.py:10) 2\n"
        "MainThread;main (cli.py:1);select (selectors.py:3) 2\n"
    )
    text = summarize(raw)
    assert text.startswith("10 samples")
    own, incl = text.split("incl %")
    assert "60.0  validate_json (type_adapter.py)" in own
    assert "20.0  process (sink.py)" in own
    assert "80.0  process (sink.py)" in incl
    assert "100.0  main (cli.py)" in incl


def test_settings_and_mix_parsing():
    assert worker_env_of(("batch_max_events=2000", "direct_copy=false")) == {
        "LEARNSTREAM_BATCH_MAX_EVENTS": "2000", "LEARNSTREAM_DIRECT_COPY": "false"}
    with pytest.raises(click.BadParameter):
        worker_env_of(("nonsense",))
    assert parse_mix("learning_event=3,engagement_update=1") == {"learning_event": 0.75, "engagement_update": 0.25}
    with pytest.raises(click.BadParameter):
        parse_mix("tweets=1")


def test_soak_reports_rss_at_each_whole_minute_and_growth_after_the_warm_up() -> None:
    from streams.devkit.bench.soak import SoakResult

    r = SoakResult(rate=1000, seconds=300, shape="single")
    # a sample every 5.1 s: minute marks fall between samples, and some minutes hold two samples with t % 60 < 5
    r.samples = [(i * 5.1, 100.0 + i, i * 5100) for i in range(59)]
    assert r.by_minute() == [112.0, 124.0, 136.0, 148.0]  # the first samples at >= 60, 120, 180, 240 s
    assert r.warm_rss == 112.0 and r.end_rss == 158.0
    assert round(r.growth, 4) == round(46 / 112, 4)
    assert r.as_json()["samples"][0] == (0.0, 100.0, 0)
    assert r.lines()[-1] == "RSS by minute (MB): 112, 124, 136, 148"

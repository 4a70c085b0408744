"""The seed views that compute something (issue #25), by hand: ai_learning_patterns,
cross_platform_patterns, ai_performance_dashboard, style_performance_view, trend_analysis_view,
competitor_benchmark_summary, audience_demographics_latest, engagement_summary_by_hour/_by_day
(through engagement_by_local_time and the window stage) and the materialized views
platform_performance_summary, daily_learning_metrics and model_performance_summary (refreshed by
the refresh_materialized_views job).

Times: D = 00:00 UTC three days ago (the learning events), L = yesterday (UTC; the account
snapshots), W = the start of the previous UTC hour, 1 to 2 hours ago (the engagement
snapshots: recent, so later than every other oracle's and never late for the window stage).

Posts: C1 and C3 on tiktok (account `me`, zone Asia/Kolkata, +05:30), C2 on instagram (account
`me-ig`, never snapshotted: zone unknown, UTC), Y on youtube (`me-yt`).

Patterns (pattern_detection; occurrence -> content, success, engagement):
    P1 hook {"hook": "question"}: C1 yes 0.3, C2 no 0.1, C3 unjudged and no engagement, no content
       (a caption draft) yes 0.5 -> success_rate 100 x 2 / 3 = 66.67 (3 judged), average_engagement
       (0.3 + 0.1 + 0.5) / 3 = 0.3 (3 measured)
    P2 hook {"hook": "cliffhanger"}: C1 no 0.2 -> 0 %, 0.2
    P3 format {"format": "duet"}: C2 unjudged, no engagement -> success_rate NULL (0 judged), NULL
  cross_platform_patterns (only occurrences on known content, per pattern_type and platform):
    hook/tiktok     P1@C1, P1@C3, P2@C1: 2 patterns, 3 occurrences, 2 judged, 100 x 1 / 2 = 50 %,
                    engagement (0.3 + 0.2) / 2 = 0.25 (C3's missing engagement not a 0)
    hook/instagram  P1@C2: 1, 1, 1, 0 %, 0.1 (P1 is on both platforms, with each platform's own rate)
    format/instagram P3@C2: 1, 1, 0, NULL (nothing judged: no ratio over 0), NULL

Improvements (improvement_measured; the dashboard cuts days in UTC):
    latency  D 10:00 +20 (sent); D 23:30 latency_ms 200 -> 150: -100 x (150 - 200) / 200 = +25;
             D+1 00:30 +10 (sent, the next UTC day)  -> D: (20 + 25) / 2 = 22.5 over 2; D+1: 10 over 1
    accuracy D 12:00 auc 0 -> 0.8: over a zero before, NULL; D 13:00 auc 0.5 -> 0.6: 100 x 0.1 / 0.5
             = +20 -> D: 20 (the NULL is not averaged as 0, which would give 10), 2 rows

Styles (style_analysis, correlations sent so the style_correlation job leaves them): C1 [fast-cut,
voiceover] 0.5, C2 [voiceover, fast-cut, fast-cut] 0.3 (stored sorted, without repeats: the same
group), C3 [slow-pan] -0.2 -> {fast-cut, voiceover} (0.5 + 0.3) / 2 = 0.4 over 2; {slow-pan} -0.2.

Trends (trend_detected, source reported):
    tiktok #a: D 11:00 impact 40 (start D - 2 d), D 12:00 no impact (end D 12:00): one trend, impact
               40 (a report without impact does not erase it)
    tiktok #b: no impact -> NULL, counted, not averaged
    tiktok #long: impact 1,000, started 40 days ago, reported again at D 11:00 (end D 11:00): one
               row, start 40 days ago, still going 3 days ago -> in the last 30 days (0035; 0007's
               filter on start_time left it out)
    instagram #a: impact 10
  -> tiktok/hashtag: 3 trends, (40 + 1,000) / 2 = 520 (before 0035: 2 trends, 40);
     instagram/hashtag: 1, 10.

Competitors (account-snapshots, relationship competitor; one row per UTC day, its latest):
    rival (tiktok) L-31 1,000; L-8 18:00 1,600 and L-8 10:00 1,500 (sent in that order: the day's
          latest, 1,600, stands); L-3 1,800; L 2,000 (engagement 3.5 %, no avg_likes)
          -> followers 2,000, change 7d 2,000 - 1,600 = +400 since L-8 (the latest row at least 7
          days before L), 30d 2,000 - 1,000 = +1,000 since L-31
    newbie (instagram) L 300 only -> no change: NULL, NULL (not 0)
Own `me` (tiktok, Asia/Kolkata): L 20:00 520 followers with demographics B, L 09:00 500 with A
(sent after), L 21:00 530 without demographics -> latest demographics: L 20:00, B, 520.

Engagement, the window stage (60-s tumbling windows, grace 1 s; gains from each post's previous
snapshot, a first snapshot gains 0):
    C1 W+5 s 100 views 10 likes; W+65 s 300 views 40 likes 10 comments -> +200 views, +40 interactions
    C3 W+10 s 50 views; W+70 s 50 views 5 likes                      -> +0 views, +5 interactions
    C2 W+20 s 0 views 7 likes (instagram)                            -> first: 0, 0
    Y  W+600 s 10 views (youtube): moves the watermark past W+121 s, so the windows of W+60 s close
       at once (its own window closes only on the stage's idle clock: left out of the assertions)
  engagement_by_time tiktok (UTC hour W): windows 2 + 2 = 4 (two posts, two windows), updates 4,
  minutes 4 x 1 = 4, views 200, interactions 40 + 5 = 45 -> rate 45 / 200 = 0.225, velocity
  200 / 4 = 50 views a minute; the summaries put it at the local hour / day of week of W + 05:30.
  instagram: 1 window, 1 update, 1 minute, 0, 0 -> rate NULL (no views), velocity 0 / 1 = 0, at
  W's UTC hour (account zone unknown).

platform_performance_summary (each post's latest snapshot; rate = interactions / views):
    tiktok   C1 300 views, 50 / 300 = 1/6; C3 50 views, 5 / 50 = 0.1 -> 2 posts, 350 views, avg 175,
             p50 (50 + 300) / 2 = 175, p90 50 + 0.9 x 250 = 275; rate avg (1/6 + 0.1) / 2 = 2/15,
             p50 2/15, p90 0.1 + 0.9 x (1/6 - 0.1) = 0.16
    instagram C2 0 views: 1 post, 0 views; rate NULL (0 views: no ratio), its averages NULL
    youtube  Y 10 views, 0 interactions: rate 0
daily_learning_metrics (per UTC day, event_type, source_system; processing_time_ms):
    D-1 model_registered trainer 4 (no times: NULL, NULL)
    D   model_prediction ranker 3, 10 / 20 / 60 ms: avg 30, p95 20 + 0.9 x (60 - 20) = 56
    D   pattern_detection pattern_analyzer 6, 100 / 200 / 300 / 400 ms and two without: avg 250
        (over the 4), p95 300 + 0.85 x 100 = 385 (position 0.95 x 3 = 2.85)
    D   trend_detected trendwatch 5; D style_analysis styler 3; D improvement_measured evaluator 4;
    D+1 improvement_measured evaluator 1; D+1 prediction_outcome (no source: NULL) 2
model_performance_summary (active models; accuracy_score = max(0, 1 - |p - a| / |a|)):
    ranker 1: p1 100 vs 80 -> 0.75, p2 50 vs 100 -> 0.5, p3 10 no outcome -> 3 predictions, avg
              (0.75 + 0.5) / 2 = 0.625 (p3 not a 0), 2 validated, last D 09:20
    ranker 2: active, no predictions -> 0, NULL, 0, NULL
    scorer 1: registered active, then deprecated -> not listed
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.jobs.oracles import Feed, account, event, post, scrape

NOW = datetime.now(UTC)
D = NOW.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
L = (NOW - timedelta(days=1)).date()
W = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
S = timedelta(seconds=1)
_ID = {n: str(uuid.uuid5(uuid.NAMESPACE_URL, f"oracle-seed-views-{n}")) for n in (
    "C1", "C2", "C3", "Y", "m1", "m2", "m3", "p1", "p2", "p3")}
C1, C2, C3, Y = _ID["C1"], _ID["C2"], _ID["C3"], _ID["Y"]
KOLKATA = ZoneInfo("Asia/Kolkata")
DEMO_A = {"age_ranges": {"18-24": 60.0, "25-34": 40.0}}
DEMO_B = {"age_ranges": {"18-24": 55.0, "25-34": 45.0}, "top_countries": {"IN": 70.0}}


def at(d: date, hour: int, minute: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=UTC)


def _dow(d: date) -> int:
    return d.isoweekday() % 7  # 0 = Sunday, as extract(dow)


def _patterns(ws: str) -> list[dict]:
    # (pattern, content or None, success, engagement, processing_time_ms)
    occurrences = [("P1", C1, True, 0.3, 100), ("P1", C2, False, 0.1, 200), ("P1", C3, None, None, 300),
                   ("P1", None, True, 0.5, 400), ("P2", C1, False, 0.2, None), ("P3", C2, None, None, None)]
    kinds = {"P1": ("hook", "question hook", {"hook": "question"}), "P2": ("hook", "cliffhanger", {"hook": "cliffhanger"}),
             "P3": ("format", "duet", {"format": "duet"})}
    out = []
    for i, (p, content, success, engagement, ms) in enumerate(occurrences):
        pattern_type, name, signature = kinds[p]
        data = {"pattern_type": pattern_type, "pattern_name": name, "signature": signature,
                "source_id": content or "caption-draft-7"}
        if p == "P1":
            data["description"] = "opens with a question"
        if content:
            data["content_id"] = content
        if success is not None:
            data["success"] = success
        if engagement is not None:
            data["engagement"] = engagement
        extra = {"processing_time_ms": ms} if ms is not None else {}
        out.append(event(ws, "pattern_detection", at(D.date(), 10, i), data, source_system="pattern_analyzer",
                         **extra))
    return out


def feed(ws: str) -> Feed:
    f = Feed()
    d0, d1 = D.date(), D.date() + timedelta(days=1)
    for cid, platform, connector in ((C1, "tiktok", "me"), (C3, "tiktok", "me"), (C2, "instagram", "me-ig"),
                                     (Y, "youtube", "me-yt")):
        f.content.append(post(ws, cid, W - timedelta(days=1), platform=platform, connector=connector))
    # engagement (time order within the message; one batch for the window stage)
    f.engagement += [
        scrape(ws, C1, W + 5 * S, views=100, likes=10),
        scrape(ws, C3, W + 10 * S, views=50),
        scrape(ws, C2, W + 20 * S, platform="instagram", connector="me-ig", views=0, likes=7),
        scrape(ws, C1, W + 65 * S, views=300, likes=40, comments=10),
        scrape(ws, C3, W + 70 * S, views=50, likes=5),
        scrape(ws, Y, W + 600 * S, platform="youtube", connector="me-yt", views=10),
    ]
    # accounts
    f.accounts += [
        account(ws, "me", at(L, 20), 520, timezone="Asia/Kolkata", demographics=DEMO_B),
        account(ws, "me", at(L, 9), 500, timezone="Asia/Kolkata", demographics=DEMO_A),
        account(ws, "me", at(L, 21), 530, timezone="Asia/Kolkata"),
        account(ws, "rival", at(L - timedelta(days=31), 12), 1000, relationship="competitor"),
        account(ws, "rival", at(L - timedelta(days=8), 18), 1600, relationship="competitor"),
        account(ws, "rival", at(L - timedelta(days=8), 10), 1500, relationship="competitor"),
        account(ws, "rival", at(L - timedelta(days=3), 12), 1800, relationship="competitor"),
        account(ws, "rival", at(L, 12), 2000, relationship="competitor", engagement_rate=3.5),
        account(ws, "newbie", at(L, 12), 300, relationship="competitor", platform="instagram"),
    ]
    # models and predictions
    reg = [("m1", "ranker", "1", "active", 8), ("m2", "ranker", "2", "active", 8), ("m3", "scorer", "1", "active", 8),
           ("m3", "scorer", "1", "deprecated", 9)]
    for key, name, version, status, hour in reg:
        f.learning.append(event(ws, "model_registered", at(d0 - timedelta(days=1), hour), {
            "model_id": _ID[key], "name": name, "version": version, "model_type": "prediction", "status": status},
            source_system="trainer"))
    for i, (key, score, ms) in enumerate((("p1", 100.0, 10), ("p2", 50.0, 20), ("p3", 10.0, 60))):
        f.learning.append(event(ws, "model_prediction", at(d0, 9, 10 * i), {
            "prediction_id": _ID[key], "model_id": _ID["m1"], "prediction_type": "followers",
            "target_entity_type": "account", "target_entity_id": "me", "predicted_score": score},
            source_system="ranker", processing_time_ms=ms))
    for key, actual in (("p1", 80.0), ("p2", 100.0)):
        f.learning.append(event(ws, "prediction_outcome", at(d1, 9), {"prediction_id": _ID[key], "actual_score": actual}))
    f.learning += _patterns(ws)
    # improvements
    for t, data in (
        (at(d0, 10), {"improvement_type": "latency", "improvement_percentage": 20.0}),
        (at(d0, 23, 30), {"improvement_type": "latency", "metric": "latency_ms", "before_metrics": {"latency_ms": 200},
                          "after_metrics": {"latency_ms": 150}}),
        (at(d1, 0, 30), {"improvement_type": "latency", "improvement_percentage": 10.0}),
        (at(d0, 12), {"improvement_type": "accuracy", "metric": "auc", "before_metrics": {"auc": 0},
                      "after_metrics": {"auc": 0.8}}),
        (at(d0, 13), {"improvement_type": "accuracy", "metric": "auc", "before_metrics": {"auc": 0.5},
                      "after_metrics": {"auc": 0.6}}),
    ):
        f.learning.append(event(ws, "improvement_measured", t, data, source_system="evaluator"))
    # styles
    for cid, tags, r in ((C1, ["fast-cut", "voiceover"], 0.5), (C2, ["voiceover", "fast-cut", "fast-cut"], 0.3),
                         (C3, ["slow-pan"], -0.2)):
        f.learning.append(event(ws, "style_analysis", at(d0, 14), {
            "content_id": cid, "style_tags": tags, "engagement_correlation": r}, source_system="styler"))
    # trends
    for t, data in (
        (at(d0, 11), {"platform": "tiktok", "trend_type": "hashtag", "trend_key": "#a", "engagement_impact": 40.0,
                      "start_time": (D - timedelta(days=2)).isoformat()}),
        (at(d0, 12), {"platform": "tiktok", "trend_type": "hashtag", "trend_key": "#a",
                      "end_time": at(d0, 12).isoformat()}),
        (at(d0, 11), {"platform": "tiktok", "trend_type": "hashtag", "trend_key": "#b"}),
        (at(d0, 11), {"platform": "tiktok", "trend_type": "hashtag", "trend_key": "#long", "engagement_impact": 1000.0,
                      "start_time": (NOW - timedelta(days=40)).isoformat(), "end_time": at(d0, 11).isoformat()}),
        (at(d0, 11), {"platform": "instagram", "trend_type": "hashtag", "trend_key": "#a", "engagement_impact": 10.0}),
    ):
        f.learning.append(event(ws, "trend_detected", t, data, source_system="trendwatch"))
    f.wait = {"content": 4, "content_performance_metrics": 6, "connectors": 3, "audience_demographics": 2,
              "competitor_metrics": 5, "ml_models": 3, "predictions": 3, "pattern_occurrences": 6,
              "prediction_accuracy": 2, "ai_improvement_tracking": 5, "content_style_analysis": 3, "trend_analysis": 4,
              "learning_events": 4 + 3 + 2 + 6 + 5 + 3 + 5}
    return f


async def check(conn, ws: str, run) -> None:
    w = uuid.UUID(ws)
    d0, d1 = D.date(), D.date() + timedelta(days=1)
    await _check_learning_views(conn, w, d0, d1)
    await _check_account_views(conn, w)
    await _check_engagement_summaries(conn, w)

    r = await run("refresh_materialized_views")
    assert r.status == "succeeded", r.error
    await _check_materialized(conn, w, d0, d1)


async def _check_learning_views(conn, w: uuid.UUID, d0: date, d1: date) -> None:
    pats = {r["pattern_data"]["pattern_name"]: r for r in await conn.fetch(
        "SELECT * FROM ai_learning_patterns WHERE workspace_id = $1", w)}
    assert sorted(pats) == ["cliffhanger", "duet", "question hook"], sorted(pats)
    p1, p2, p3 = pats["question hook"], pats["cliffhanger"], pats["duet"]
    assert p1["pattern_data"] == {"pattern_name": "question hook", "pattern_description": "opens with a question",
                                  "hook": "question"}
    assert p1["pattern_type"] == "hook" and p3["pattern_type"] == "format"
    assert p1["success_rate"] == pytest.approx(100 * 2 / 3)          # 2 succeeded of 3 judged (C3 unjudged)
    assert p1["average_engagement"] == pytest.approx((0.3 + 0.1 + 0.5) / 3)  # C3's missing engagement not a 0
    assert (p1["first_observed"], p1["last_observed"]) == (at(d0, 10, 0), at(d0, 10, 3))
    assert (p2["success_rate"], p2["average_engagement"]) == (0.0, pytest.approx(0.2))
    assert (p3["success_rate"], p3["average_engagement"]) == (None, None)  # nothing judged / measured

    cross = {(r["pattern_type"], r["platform"]): tuple(r)[3:] for r in await conn.fetch(
        """SELECT workspace_id, pattern_type, platform, platform_success, pattern_count, occurrence_count,
                  judged_occurrences, average_engagement FROM cross_platform_patterns WHERE workspace_id = $1""", w)}
    assert cross == {
        ("hook", "tiktok"): (pytest.approx(100 * 1 / 2), 2, 3, 2, pytest.approx((0.3 + 0.2) / 2)),
        ("hook", "instagram"): (0.0, 1, 1, 1, pytest.approx(0.1)),
        ("format", "instagram"): (None, 1, 1, 0, None),  # no occurrence judged: NULL, not 0 %
    }, cross

    dash = {(r["date"], r["improvement_type"]): (r["daily_improvement"], r["improvement_count"]) for r in await conn.fetch(
        "SELECT * FROM ai_performance_dashboard WHERE workspace_id = $1", w)}
    midnight = datetime(d0.year, d0.month, d0.day, tzinfo=UTC)
    assert dash == {
        (midnight, "latency"): (pytest.approx((20 + (-100 * (150 - 200) / 200)) / 2), 2),  # (20 + 25) / 2
        (midnight + timedelta(days=1), "latency"): (pytest.approx(10.0), 1),               # 00:30 UTC, next day
        (midnight, "accuracy"): (pytest.approx(100 * (0.6 - 0.5) / 0.5), 2),               # 20; auc from 0: NULL
    }, dash

    styles = {tuple(r["style_tags"]): (r["avg_engagement"], r["usage_count"]) for r in await conn.fetch(
        "SELECT * FROM style_performance_view WHERE workspace_id = $1", w)}
    assert styles == {("fast-cut", "voiceover"): (pytest.approx((0.5 + 0.3) / 2), 2),
                      ("slow-pan",): (pytest.approx(-0.2), 1)}, styles

    trends = {(r["platform"], r["trend_type"]): (r["avg_impact"], r["trend_count"]) for r in await conn.fetch(
        "SELECT * FROM trend_analysis_view WHERE workspace_id = $1", w)}
    assert trends == {("tiktok", "hashtag"): (pytest.approx((40 + 1000) / 2), 3),  # #a 40, #long 1,000, #b NULL
                      ("instagram", "hashtag"): (pytest.approx(10.0), 1)}, trends   # (before 0035: 40 over 2)


async def _check_account_views(conn, w: uuid.UUID) -> None:
    comp = {r["competitor_id"]: r for r in await conn.fetch(
        "SELECT * FROM competitor_benchmark_summary WHERE workspace_id = $1", w)}
    assert sorted(comp) == ["newbie", "rival"]
    rival, newbie = comp["rival"], comp["newbie"]
    assert (rival["name"], rival["platform"], rival["recorded_date"], rival["followers"]) == (
        "@rival", "tiktok", L, 2000)
    assert (rival["engagement_rate"], rival["avg_likes"]) == (3.5, None)
    assert (rival["follower_change_7d"], rival["follower_change_7d_since"]) == (2000 - 1600, L - timedelta(days=8))
    assert (rival["follower_change_30d"], rival["follower_change_30d_since"]) == (2000 - 1000, L - timedelta(days=31))
    assert (newbie["platform"], newbie["followers"], newbie["follower_change_7d"], newbie["follower_change_7d_since"],
            newbie["follower_change_30d"], newbie["follower_change_30d_since"]) == ("instagram", 300, None, None, None, None)

    demo = await conn.fetch("SELECT * FROM audience_demographics_latest WHERE workspace_id = $1", w)
    assert len(demo) == 1, demo
    assert (demo[0]["connector_id"], demo[0]["platform"], demo[0]["recorded_at"], demo[0]["total_followers"]) == (
        "me", "tiktok", at(L, 20), 520)  # not 09:00 (sent later), not 21:00 (no demographics)
    assert (demo[0]["age_ranges"], demo[0]["top_countries"], demo[0]["gender_distribution"]) == (
        DEMO_B["age_ranges"], DEMO_B["top_countries"], {})


async def _check_engagement_summaries(conn, w: uuid.UUID) -> None:
    # the window stage closes W+60 s's windows when Y's snapshot moves its watermark; wait for them
    deadline = time.monotonic() + 20
    while True:
        got = await conn.fetchval(
            "SELECT sum(windows) FROM engagement_by_time WHERE workspace_id = $1 AND platform = 'tiktok'", w)
        if got == 4:
            break
        assert time.monotonic() < deadline, f"engagement_by_time has {got} tiktok windows of 4"
        await asyncio.sleep(0.3)
    local = W.astimezone(KOLKATA)  # the local time the UTC hour W starts at (+05:30)
    cols = "windows, updates, minutes, views_gained, interactions_gained, engagement_rate, engagement_velocity"
    tiktok = (4, 4, 4.0, 200, 40 + 5, pytest.approx(45 / 200), pytest.approx(200 / 4))
    instagram = (1, 1, 1.0, 0, 0, None, 0.0)  # no views gained: no rate; 0 views over 1 minute
    for view, key, want_tiktok, want_instagram in (
            ("engagement_summary_by_hour", "hour_of_day", local.hour, W.hour),
            ("engagement_summary_by_day", "day_of_week", _dow(local.date()), _dow(W.date()))):
        got = {(r["platform"], r[key]): tuple(r)[2:] for r in await conn.fetch(
            f"SELECT platform, {key}, {cols} FROM {view} WHERE workspace_id = $1 AND platform <> 'youtube'", w)}
        assert got == {("tiktok", want_tiktok): tiktok, ("instagram", want_instagram): instagram}, (view, got)


async def _check_materialized(conn, w: uuid.UUID, d0: date, d1: date) -> None:
    perf = {r["platform"]: tuple(r)[1:] for r in await conn.fetch(
        """SELECT platform, content_count, total_views, avg_views, p50_views, p90_views, avg_engagement_rate,
                  p50_engagement_rate, p90_engagement_rate FROM platform_performance_summary WHERE workspace_id = $1""",
        w)}
    r1, r3 = (40 + 10) / 300, 5 / 50  # C1 1/6, C3 0.1
    assert perf == {
        "tiktok": (2, 300 + 50, pytest.approx(350 / 2), pytest.approx((50 + 300) / 2), pytest.approx(50 + 0.9 * 250),
                   pytest.approx((r1 + r3) / 2), pytest.approx((r1 + r3) / 2), pytest.approx(r3 + 0.9 * (r1 - r3))),
        "instagram": (1, 0, 0.0, 0.0, 0.0, None, None, None),  # 0 views: rate undefined, not 0 or infinite
        "youtube": (1, 10, 10.0, 10.0, 10.0, 0.0, 0.0, 0.0),
    }, perf

    learning = {(r["date"], r["event_type"], r["source_system"]): tuple(r)[3:] for r in await conn.fetch(
        """SELECT date, event_type, source_system, event_count, avg_processing_time, p95_processing_time
           FROM daily_learning_metrics WHERE workspace_id = $1""", w)}
    assert learning == {
        (d0 - timedelta(days=1), "model_registered", "trainer"): (4, None, None),
        (d0, "model_prediction", "ranker"): (3, pytest.approx((10 + 20 + 60) / 3), pytest.approx(20 + 0.9 * 40)),
        (d0, "pattern_detection", "pattern_analyzer"): (6, pytest.approx((100 + 200 + 300 + 400) / 4),
                                                        pytest.approx(300 + 0.85 * 100)),
        (d0, "trend_detected", "trendwatch"): (5, None, None),
        (d0, "style_analysis", "styler"): (3, None, None),
        (d0, "improvement_measured", "evaluator"): (4, None, None),
        (d1, "improvement_measured", "evaluator"): (1, None, None),
        (d1, "prediction_outcome", None): (2, None, None),
    }, learning

    models = {(r["name"], r["version"]): tuple(r)[2:] for r in await conn.fetch(
        """SELECT name, version, prediction_count, avg_accuracy, validated_predictions, last_prediction
           FROM model_performance_summary WHERE workspace_id = $1""", w)}
    assert models == {
        ("ranker", "1"): (3, pytest.approx(((1 - 20 / 80) + (1 - 50 / 100)) / 2), 2, at(d0, 9, 20)),  # 0.625
        ("ranker", "2"): (0, None, 0, None),
    }, models  # scorer 1: deprecated by its later registration

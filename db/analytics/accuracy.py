"""Prediction accuracy from engagement, and accuracy per model and day (issue #10).

A content prediction whose prediction_type names an engagement figure (views, likes, shares,
comments, saves, interactions = likes + shares + comments + saves, engagement_rate = interactions /
views) and that has a horizon is measured on the post's first content_performance_metrics snapshot
recorded at or after its due time, prediction_timestamp + horizon, if that snapshot is not stale:
recorded at most the tolerance after the due time,

    tolerance = min(MAX_TOLERANCE_HOURS, max(MIN_TOLERANCE_HOURS, TOLERANCE_FRACTION x horizon))

(1 h for horizons up to 4 h, a quarter of the horizon up to 96 h, 24 h beyond: a 24-h prediction
is judged on a snapshot up to 30 h after it). A prediction whose first snapshot after the due time
is later than that is not judged on it (a 24-h views prediction against a 20-day-old count would
score 2 %): it is set 'expired', actual_outcome {"reason": "stale_outcome", ...} saying when it was
due, the deadline and the snapshot's time; no accuracy row. One without any snapshot after its due
time stays active. The figure is taken from the first snapshot within the tolerance on which it
is defined: an engagement_rate needs views > 0, so a snapshot with 0 views is passed over for a
later one within the tolerance; when the tolerance has passed (the run's time is after the
deadline) and no snapshot in it defines the figure, the prediction is set 'expired' with
{"reason": "undefined_outcome", ...} (same fields). Only predictions without an outcome yet are measured (an explicit
prediction_outcome stands, and still applies to an expired one), in bounded transactions; a run
twice changes nothing the second time.

Both accuracy measures of migration 0032 are written: accuracy_percentage (relative-error accuracy,
100 x max(0, 1 - |p - a| / |a|), asymmetric) and ratio_accuracy (100 x min / max, symmetric, NULL
across a sign change or a zero). The absolute and percentage errors and both accuracies are the
SQL functions of migrations 0032 and 0038: NULL where the figure is not a double (a prediction
of 1e308 against an actual of 1 has no percentage error; its accuracy is 0), never a failed run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from db.analytics.safe import avg

log = logging.getLogger("learnstream.accuracy")

#: prediction_type -> the figure of a snapshot it predicts
MEASURED_TYPES = ("views", "likes", "shares", "comments", "saves", "interactions", "engagement_rate")

#: the staleness bound: an outcome snapshot counts when recorded at most
#: min(MAX, max(MIN, FRACTION x horizon)) hours after the prediction's due time
MIN_TOLERANCE_HOURS = 1.0
TOLERANCE_FRACTION = 0.25
MAX_TOLERANCE_HOURS = 24.0

#: due, unmeasured content predictions after the page cursor ($3, $4, $5): $1 types, $2 now
_DUE = """p.actual_score IS NULL AND p.outcome_at IS NULL AND p.status = 'active'
      AND p.target_entity_type = 'content' AND p.prediction_horizon IS NOT NULL AND p.predicted_score IS NOT NULL
      AND p.prediction_type = ANY($1::text[])
      AND p.prediction_timestamp + make_interval(hours => p.prediction_horizon) <= $2
      AND ($3::timestamptz IS NULL OR (p.prediction_timestamp, p.workspace_id, p.id) > ($3, $4::uuid, $5::uuid))"""

#: the last key of the next page of due predictions ($6 = page size); its plan reads the partial
#: index idx_predictions_due (0042) in this order (tests/integration/test_indexes.py explains it)
DUE_PAGE_END = """
SELECT prediction_timestamp, workspace_id, id FROM (
    SELECT p.prediction_timestamp, p.workspace_id, p.id FROM predictions p WHERE """ + _DUE + """
    ORDER BY 1, 2, 3 LIMIT $6) AS page
ORDER BY 1 DESC, 2 DESC, 3 DESC LIMIT 1
"""

#: measure or expire the due predictions up to the page end ($6, $7, $8); $9, $10, $11 the
#: tolerance's MIN_TOLERANCE_HOURS, TOLERANCE_FRACTION, MAX_TOLERANCE_HOURS -> (measured, expired)
_MEASURE = """
WITH due AS (
    SELECT p.workspace_id, p.id, p.model_id, p.prediction_type, p.predicted_score,
        uuid_or_null(p.target_entity_id) AS content_id,
        p.prediction_timestamp + make_interval(hours => p.prediction_horizon) AS due_at,
        p.prediction_timestamp + make_interval(hours => p.prediction_horizon)
            + make_interval(secs => 3600 * least($11::double precision,
                greatest($9::double precision, $10::double precision * p.prediction_horizon))) AS deadline
    FROM predictions p
    WHERE """ + _DUE + """
      AND (p.prediction_timestamp, p.workspace_id, p.id) <= ($6::timestamptz, $7::uuid, $8::uuid)
), first_after AS (
    -- the post's first snapshot at or after the due time (none yet: the prediction waits)
    SELECT d.*, s.recorded_at
    FROM due d
    CROSS JOIN LATERAL (
        SELECT c.recorded_at FROM content_performance_metrics c
        WHERE c.workspace_id = d.workspace_id AND c.content_id = d.content_id AND c.recorded_at >= d.due_at
        ORDER BY c.recorded_at LIMIT 1
    ) AS s
), measured AS (
    -- the first snapshot within the tolerance whose figure is defined (an engagement rate needs
    -- views > 0: a snapshot with 0 views is passed over for a later one)
    SELECT f.workspace_id, f.id, f.model_id, f.prediction_type, f.predicted_score, f.content_id,
        s.recorded_at, s.views, s.likes, s.shares, s.comments, s.saves, s.actual
    FROM first_after f
    CROSS JOIN LATERAL (
        SELECT c.recorded_at, c.views, c.likes, c.shares, c.comments, c.saves, v.actual
        FROM content_performance_metrics c
        CROSS JOIN LATERAL (SELECT CASE f.prediction_type
            WHEN 'views' THEN c.views::double precision
            WHEN 'likes' THEN c.likes::double precision
            WHEN 'shares' THEN c.shares::double precision
            WHEN 'comments' THEN c.comments::double precision
            WHEN 'saves' THEN c.saves::double precision
            -- numeric: four counters of up to 2^63 - 1 exceed bigint
            WHEN 'interactions' THEN (c.likes::numeric + c.shares + c.comments + c.saves)::double precision
            WHEN 'engagement_rate'
            THEN (c.likes::numeric + c.shares + c.comments + c.saves)::double precision / nullif(c.views, 0)
        END AS actual) AS v
        WHERE c.workspace_id = f.workspace_id AND c.content_id = f.content_id
          AND c.recorded_at >= f.due_at AND c.recorded_at <= f.deadline AND v.actual IS NOT NULL
        ORDER BY c.recorded_at LIMIT 1
    ) AS s
), expired AS (
    -- not judged: the first snapshot after the due time is past the tolerance (stale_outcome), or
    -- the tolerance has passed ($2) and none of the snapshots in it has a defined figure
    -- (undefined_outcome: e.g. an engagement rate whose snapshots all had 0 views)
    UPDATE predictions p SET
        status = 'expired',
        actual_outcome = jsonb_build_object(
            'reason', CASE WHEN f.recorded_at > f.deadline THEN 'stale_outcome' ELSE 'undefined_outcome' END,
            'metric', f.prediction_type, 'due_at', f.due_at, 'deadline', f.deadline,
            'first_snapshot_at', f.recorded_at)
    FROM first_after f
    WHERE p.workspace_id = f.workspace_id AND p.id = f.id
      AND (f.recorded_at > f.deadline
           OR (f.deadline < $2 AND NOT EXISTS (SELECT 1 FROM measured m WHERE m.workspace_id = f.workspace_id
                                                                     AND m.id = f.id)))
    RETURNING p.id
), upd AS (
    UPDATE predictions p SET
        actual_score = m.actual,
        actual_outcome = jsonb_build_object('metric', m.prediction_type, 'value', m.actual, 'recorded_at', m.recorded_at),
        accuracy_score = prediction_accuracy_score(p.predicted_score, m.actual),
        status = 'validated', outcome_at = m.recorded_at
    FROM measured m
    WHERE p.workspace_id = m.workspace_id AND p.id = m.id
    RETURNING p.workspace_id, p.id
), ins AS (
    INSERT INTO prediction_accuracy (workspace_id, prediction_id, model_id, prediction_type, content_id, predicted_score,
        actual_score, absolute_error, percentage_error, accuracy_percentage, ratio_accuracy, actual_metrics, source,
        measured_at)
    SELECT m.workspace_id, m.id, m.model_id, m.prediction_type, m.content_id, m.predicted_score, m.actual,
        prediction_absolute_error(m.predicted_score, m.actual), prediction_percentage_error(m.predicted_score, m.actual),
        100.0 * prediction_accuracy_score(m.predicted_score, m.actual),
        100.0 * prediction_ratio_accuracy(m.predicted_score, m.actual),
        jsonb_build_object('views', m.views, 'likes', m.likes, 'shares', m.shares, 'comments', m.comments,
                           'saves', m.saves, 'recorded_at', m.recorded_at),
        'engagement', m.recorded_at
    FROM measured m JOIN upd USING (workspace_id, id)
    ON CONFLICT (workspace_id, prediction_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS measured, (SELECT count(*) FROM expired) AS expired
"""


@dataclass
class Settled:
    """What a measuring run did: predictions measured (an accuracy row each) and expired (stale or
    undefined outcome)."""

    measured: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.measured + self.expired


async def settle_due_predictions(conn: asyncpg.Connection, now: datetime, batch: int = 5000) -> Settled:
    """Measure every due prediction on its first snapshot after the due time, or expire it when that
    snapshot is stale, a page of `batch` per transaction, in (prediction time, key) order with a
    cursor: a page of predictions whose posts have no snapshot after the horizon yet does not hide
    the pages after it."""
    done = Settled()
    cursor: tuple = (None, None, None)
    while True:
        async with conn.transaction():
            end = await conn.fetchrow(DUE_PAGE_END, list(MEASURED_TYPES), now, *cursor, batch)
            if end is None:
                return done
            row = await conn.fetchrow(_MEASURE, list(MEASURED_TYPES), now, *cursor, *end,
                                      MIN_TOLERANCE_HOURS, TOLERANCE_FRACTION, MAX_TOLERANCE_HOURS)
        done.measured += row["measured"]
        done.expired += row["expired"]
        cursor = tuple(end)


async def measure_due_predictions(conn: asyncpg.Connection, now: datetime, batch: int = 5000) -> int:
    """The prediction_accuracy job: settle_due_predictions -> predictions measured or expired."""
    done = await settle_due_predictions(conn, now, batch)
    if done.expired:
        log.info("prediction_accuracy: %d measured, %d expired (outcome stale or undefined)", done.measured, done.expired)
    return done.total


#: model_accuracy_daily for the keys (workspace, model, prediction type, UTC day) whose accuracy rows
#: changed (taken out of prediction_accuracy_changes, migration 0044) and those of the days in
#: [$1, $2) (dates), each recomputed whole from its rows; a key without rows left loses its daily row.
#: One statement: the changes it reads and the rows it reads are of one snapshot; it deletes a
#: change only with the changed_at it read (review 3 F8: one row per key, whose changed_at a later
#: write moves on): a change committed meanwhile, or still uncommitted (the delete waits for the
#: writer's row lock, then sees the new changed_at), stays for the next run -> (upserted, deleted)
_DAILY = """
WITH taken AS (
    SELECT workspace_id, model_id, prediction_type, day, changed_at FROM prediction_accuracy_changes
), consumed AS (
    DELETE FROM prediction_accuracy_changes c USING taken t
    WHERE (c.workspace_id, c.model_id, c.prediction_type, c.day, c.changed_at)
          = (t.workspace_id, t.model_id, t.prediction_type, t.day, t.changed_at)
    RETURNING 1
), keys AS (
    SELECT workspace_id, model_id, prediction_type, day FROM taken
    UNION
    SELECT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date FROM prediction_accuracy
    WHERE measured_at >= ($1::date)::timestamp AT TIME ZONE 'UTC' AND measured_at < ($2::date)::timestamp AT TIME ZONE 'UTC'
    UNION
    SELECT workspace_id, model_id, prediction_type, day FROM model_accuracy_daily WHERE day >= $1::date AND day < $2::date
), days AS (
    SELECT DISTINCT day FROM keys
), agg AS (
    SELECT a.workspace_id, a.model_id, a.prediction_type, (a.measured_at AT TIME ZONE 'UTC')::date AS day,
        count(*) AS predictions, avg(a.accuracy_percentage) AS mean_accuracy, avg(a.ratio_accuracy) AS mean_ratio_accuracy,
        count(a.ratio_accuracy) AS ratio_predictions, """ + avg("a.absolute_error") + """ AS mean_absolute_error,
        """ + avg("a.percentage_error") + """ AS mean_percentage_error
    FROM days d
    JOIN prediction_accuracy a ON a.measured_at >= d.day::timestamp AT TIME ZONE 'UTC'
                              AND a.measured_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
    WHERE (a.workspace_id, a.model_id, a.prediction_type, (a.measured_at AT TIME ZONE 'UTC')::date)
          IN (SELECT workspace_id, model_id, prediction_type, day FROM keys)
    GROUP BY 1, 2, 3, 4
), upserted AS (
    INSERT INTO model_accuracy_daily AS d (workspace_id, model_id, prediction_type, day, predictions, mean_accuracy,
        mean_ratio_accuracy, ratio_predictions, mean_absolute_error, mean_percentage_error, computed_at)
    SELECT workspace_id, model_id, prediction_type, day, predictions, mean_accuracy, mean_ratio_accuracy,
        ratio_predictions, mean_absolute_error, mean_percentage_error, clock_timestamp()
    FROM agg
    ON CONFLICT (workspace_id, model_id, prediction_type, day) DO UPDATE SET
        predictions = excluded.predictions, mean_accuracy = excluded.mean_accuracy,
        mean_ratio_accuracy = excluded.mean_ratio_accuracy, ratio_predictions = excluded.ratio_predictions,
        mean_absolute_error = excluded.mean_absolute_error, mean_percentage_error = excluded.mean_percentage_error,
        computed_at = excluded.computed_at
    RETURNING 1
), deleted AS (
    DELETE FROM model_accuracy_daily d USING keys k
    WHERE (d.workspace_id, d.model_id, d.prediction_type, d.day) = (k.workspace_id, k.model_id, k.prediction_type, k.day)
      AND NOT EXISTS (SELECT 1 FROM agg g WHERE (g.workspace_id, g.model_id, g.prediction_type, g.day)
                                                = (d.workspace_id, d.model_id, d.prediction_type, d.day))
    RETURNING 1
)
SELECT (SELECT count(*) FROM upserted) AS upserted, (SELECT count(*) FROM deleted) AS deleted,
    (SELECT count(*) FROM consumed) AS consumed
"""


async def accuracy_per_day(conn: asyncpg.Connection, start: datetime, end: datetime) -> int:
    """model_accuracy_daily: the UTC days [start, end) touches, and every day whose prediction_accuracy
    rows changed since the previous run (a late or backfilled outcome, a replaced or deleted row),
    each recomputed whole (idempotent) -> daily rows written or deleted."""
    first = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    async with conn.transaction():
        row = await conn.fetchrow(_DAILY, first, last + timedelta(days=1))
    return row["upserted"] + row["deleted"]

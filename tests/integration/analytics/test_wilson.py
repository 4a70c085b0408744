"""wilson_lower_bound (migration 0045; issue #25 review 2 R8), the SQL function `analytics patterns`,
the demo's summary and the Grafana patterns panel rank by, against the Wilson interval of
db/analytics/experiments.py (the A/B job's) and by hand: z = 1.959964 (95 %, two-sided),
z² = 3.841459."""

from __future__ import annotations

import pytest

from db.analytics.experiments import Arm, wilson
from db.analytics.read import WILSON_Z
from db.pool import connect

pytestmark = pytest.mark.services


async def test_the_lower_bound_by_hand_and_as_the_ab_job_computes_it(stack):
    conn = await connect(stack.dsn)
    try:
        async def bound(x, n, z=WILSON_Z):
            return await conn.fetchval("SELECT wilson_lower_bound($1, $2, $3)", x, n, z)

        # 1/1: (1 + z²/2 - z sqrt(0 + z²/4)) / (1 + z²) = 1 / 4.841459 = 0.206549
        assert await bound(1, 1) == pytest.approx(0.206549, abs=1e-6)
        # 90/100: (0.9 + 0.019207 - 1.959964 sqrt(0.0009 + 0.000096)) / 1.038415 = 0.857350 / 1.038415 = 0.825634
        assert await bound(90, 100) == pytest.approx(0.825634, abs=1e-6)
        for x, n in ((1, 1), (90, 100), (3, 4), (1, 5), (7, 7), (500, 1000)):
            assert await bound(x, n) == pytest.approx(wilson(Arm(n, x), WILSON_Z)[0], rel=1e-12)
        # no success: 0; nothing judged, or counts that are no proportion: NULL
        assert [await bound(x, n) for x, n in ((0, 10), (0, 0), (1, 0), (3, 2), (-1, 5))] == [0.0, None, None, None, None]
        assert await bound(1, 2, None) is None and await bound(None, 2) is None
    finally:
        await conn.close()

"""The accuracy functions routing calls per outcome are inlined by the planner (migration 0043): a
STRICT SQL function with a CASE body is not, and each call ran the SQL-function executor. Their
NULL results are still STRICT's (real PostgreSQL)."""

from __future__ import annotations

import pytest

from db.pool import connect

pytestmark = pytest.mark.services

FUNCTIONS = ("prediction_accuracy_score", "prediction_absolute_error", "prediction_percentage_error",
             "prediction_ratio_accuracy")


@pytest.mark.parametrize("name", FUNCTIONS)
async def test_the_function_is_inlined_and_null_in_null_out(stack, name):
    conn = await connect(stack.dsn)
    try:
        plan = "\n".join(r[0] for r in await conn.fetch(
            f"EXPLAIN VERBOSE SELECT {name}(x, x + 1) FROM generate_series(1, 3) AS i, float8(i) AS x"))
        assert name not in plan and "CASE" in plan, plan
        assert await conn.fetchrow(f"SELECT {name}(NULL, 1), {name}(1, NULL), {name}(NULL, NULL)") == (None, None, None)
        # the figures themselves: 90 predicted, 100 actual
        assert await conn.fetchval(f"SELECT {name}(90, 100)") == pytest.approx(
            {"prediction_accuracy_score": 0.9, "prediction_absolute_error": 10.0, "prediction_percentage_error": 10.0,
             "prediction_ratio_accuracy": 0.9}[name])
    finally:
        await conn.close()

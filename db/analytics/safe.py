"""Overflow-safe SQL aggregates of stored doubles (issue #25 review item 5).

PostgreSQL's avg(double precision) accumulates the sum and the sum of squares in doubles and fails
the whole statement ("value out of range: overflow") when either leaves the double range: two
competitors at engagement_rate 1.7e308, or values near 1e155 whose squares overflow, failed the
benchmarks job for every workspace. `avg` here averages in doubles as before while every value is
under 1e150 in magnitude (the same result, bit for bit), and otherwise in numeric, brought back by
float8_or_null (migration 0028): the nearest double, NULL when the mean is none (NaN, infinite).
"""

from __future__ import annotations

#: below this magnitude a double's square, and the sum of up to ~1e8 of them, stays a double
_SAFE = "1e150"


def avg(expr: str) -> str:
    """SQL: the mean of the double `expr` (a caller's constant), overflow-safe."""
    return (f"CASE WHEN bool_and(abs({expr}) < {_SAFE}) IS NOT FALSE THEN avg({expr}) FILTER (WHERE abs({expr}) < {_SAFE}) "
            f"ELSE float8_or_null(avg(({expr})::numeric)) END")


def ratio(numerator: str, denominator: str) -> str:
    """SQL: `numerator` / `denominator` of two doubles (callers' constants), NULL when the
    denominator is 0 or the quotient is no double (1.7e308 / 0.5). In doubles as before where that
    cannot overflow or underflow (n = 0 or 1e-150 <= |n| < 1e150, 1e-150 <= |d| < 1e150), else in
    numeric."""
    n, d = f"({numerator})", f"({denominator})"
    return (f"CASE WHEN {d} = 0 THEN NULL WHEN abs({n}) < {_SAFE} AND abs({d}) < {_SAFE} AND abs({d}) >= 1e-150 "
            f"AND ({n} = 0 OR abs({n}) >= 1e-150) THEN {n} / {d} ELSE float8_or_null({n}::numeric / {d}::numeric) END")

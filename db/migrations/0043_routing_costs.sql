-- 0043: what routing costs per batch (issue #26, lever 2: set-based routing).
--
-- The accuracy functions inlined. A STRICT SQL function whose body is not itself strict (a CASE)
--    is not inlined by the planner: each call ran the SQL-function executor, ~3.3 us a call on the
--    development machine against ~0.15 us inlined (100,000 calls: 336 ms against 15.5 ms), and
--    routing calls four of them per outcome (the accuracy row) and one more per prediction update.
--    The same bodies with the NULL guard STRICT gave written out, so the results are the same.

CREATE OR REPLACE FUNCTION prediction_accuracy_score(predicted double precision, actual double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN predicted IS NULL OR actual IS NULL OR predicted = 'NaN' OR actual = 'NaN' THEN NULL
                WHEN actual = 0 THEN CASE WHEN predicted = 0 THEN 1.0 ELSE 0.0 END
                WHEN sign(predicted) <> sign(actual) THEN 0.0
                WHEN abs(predicted - actual) >= abs(actual) THEN 0.0
                ELSE 1.0 - abs(predicted - actual) / abs(actual) END
$$;

CREATE OR REPLACE FUNCTION prediction_absolute_error(predicted double precision, actual double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN predicted IS NULL OR actual IS NULL OR predicted = 'NaN' OR actual = 'NaN' THEN NULL
                WHEN abs(predicted) <= 8e307 AND abs(actual) <= 8e307 THEN abs(predicted - actual)
                ELSE float8_or_null(abs(predicted::numeric - actual::numeric)) END
$$;

CREATE OR REPLACE FUNCTION prediction_percentage_error(predicted double precision, actual double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN predicted IS NULL OR actual IS NULL OR predicted = 'NaN' OR actual = 'NaN' OR actual = 0 THEN NULL
                WHEN abs(predicted) <= 1e150 AND abs(actual) <= 1e150 AND abs(actual) >= 1e-150
                THEN 100.0 * abs(predicted - actual) / abs(actual)
                ELSE float8_or_null(100 * abs(predicted::numeric - actual::numeric) / abs(actual::numeric)) END
$$;

CREATE OR REPLACE FUNCTION prediction_ratio_accuracy(predicted double precision, actual double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN predicted IS NULL OR actual IS NULL OR predicted = 'NaN' OR actual = 'NaN' THEN NULL
                WHEN predicted = actual THEN 1.0
                WHEN (predicted > 0 AND actual > 0) OR (predicted < 0 AND actual < 0) THEN
                    -- min / max <= 1 cannot overflow, but can underflow (1e-300 / 1e300): such a
                    -- quotient is taken in numeric and rounded to the nearest double (0 or subnormal)
                    CASE WHEN ln(greatest(abs(predicted), abs(actual))) - ln(least(abs(predicted), abs(actual))) < 700
                         THEN least(abs(predicted), abs(actual)) / greatest(abs(predicted), abs(actual))
                         ELSE float8_or_null(least(abs(predicted), abs(actual))::numeric
                                             / greatest(abs(predicted), abs(actual))::numeric) END END
$$;

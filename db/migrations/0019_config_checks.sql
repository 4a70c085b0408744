-- 0019: the database refuses the configuration rows the code refuses (issue #23 item 3). Until
-- now a member with write access (an editor under row-level security, e.g. with psql) could store
-- an alert rule with an empty name or a NaN threshold, a webhook channel with a 12-character
-- secret or an ftp:// url, or a report schedule of too many cron fields, and the workers refused
-- the row when they read it. The workers now skip such a row on their own (logged, counted in
-- learnstream_config_rows_invalid{table}, `invalid` in the list commands); these CHECKs keep new
-- ones out.
--
--  * numbers are finite: PostgreSQL's double precision takes 'NaN', 'Infinity' and '-Infinity'
--    (and NaN = NaN is true there, so `x = x` would not do): `x NOT IN ('NaN', 'Infinity',
--    '-Infinity')`, or an upper bound, which NaN (greater than every number in PostgreSQL) and
--    Infinity both fail;
--  * a rule's durations are at most 365 days (31,536,000 s: schemas.alerts.MAX_DURATION_S);
--  * a rule's name, type and metric are not blank (`~ '[^[:space:]]'`: some non-space character);
--  * a channel's url is http(s) with a host, a secret has 16 to 512 characters (the kind <-> url /
--    secret consistency is 0017's);
--  * a report schedule's cron has 5 fields. Whether it ever fires (`0 0 31 2 *` does not) is not
--    expressible in a CHECK: the contract (schemas/reports.py) refuses it at `reports add`, and the
--    reports job skips such a stored schedule.
--
-- The constraints are added NOT VALID: rows stored before are not checked (an invalid one must
-- not fail the migration); the loaders skip them and the list commands show them `invalid`. An
-- UPDATE of such a row must satisfy the CHECKs, so fixing (or deleting) it is the way out; then
-- `ALTER TABLE … VALIDATE CONSTRAINT …` makes a constraint cover every row.

ALTER TABLE performance_alerts
    ADD CONSTRAINT performance_alerts_names_not_blank
        CHECK (alert_name ~ '[^[:space:]]' AND alert_type ~ '[^[:space:]]' AND metric ~ '[^[:space:]]') NOT VALID,
    ADD CONSTRAINT performance_alerts_threshold_finite
        CHECK (threshold_value NOT IN ('NaN', 'Infinity', '-Infinity')) NOT VALID,
    ADD CONSTRAINT performance_alerts_durations_bounded
        CHECK (window_s > 0 AND window_s <= 31536000
               AND for_duration_s >= 0 AND for_duration_s <= 31536000
               AND keep_firing_for_s >= 0 AND keep_firing_for_s <= 31536000
               AND repeat_interval_s > 0 AND repeat_interval_s <= 31536000
               AND (nodata_after_s IS NULL OR (nodata_after_s > 0 AND nodata_after_s <= 31536000))) NOT VALID,
    ADD CONSTRAINT performance_alerts_channels_not_empty
        CHECK (NOT ('' = ANY (notification_channels))) NOT VALID;

ALTER TABLE alert_channels
    ADD CONSTRAINT alert_channels_url_http
        CHECK (url IS NULL OR url ~* '^https?://([^/?#]*@)?[^/?#:@]+') NOT VALID,
    ADD CONSTRAINT alert_channels_secret_length
        CHECK (secret IS NULL OR char_length(secret) BETWEEN 16 AND 512) NOT VALID;

ALTER TABLE report_schedules
    ADD CONSTRAINT report_schedules_cron_five_fields
        CHECK (cron_expr ~ '^[[:space:]]*[^[:space:]]+([[:space:]]+[^[:space:]]+){4}[[:space:]]*$') NOT VALID;

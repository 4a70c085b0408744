"""Jobs: what the platform computes on a schedule (issue #10), run by streams/jobs/runner.py on
exactly one worker at a time cluster-wide. The catalog of jobs is streams/jobs/catalog.py."""

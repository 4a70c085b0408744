"""Retention and maintenance: runs (runner.py) and their CLI (cli.py); the SQL is db/retention.py."""

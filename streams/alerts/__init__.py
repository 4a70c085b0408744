"""Alerts: the rule engine (pure), its runtime (I/O) and the operator CLI."""

"""The dev kit: what develops, demonstrates and measures learnstream, never what runs it.

`demo` (the whole job once, on local services), `synthetic` and `mix` (generated workloads), `bench`
(throughput, latency and soak against the limit and peers), `services` (a local Kafka, PostgreSQL,
Prometheus, Alertmanager and Chromium without Docker). The product never imports this package
(import-linter checks it); its commands plug into `learnstream` through the `learnstream.commands`
entry points and are imported only when one of them runs.
"""

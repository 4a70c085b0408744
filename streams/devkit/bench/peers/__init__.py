"""Peer pipelines for `learnstream bench`. Each runs as `python -m streams.devkit.bench.peers.NAME` with
the same LEARNSTREAM_* settings as the worker (topics, consumer group, database)."""

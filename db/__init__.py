"""learnstream's PostgreSQL side: migrations, connections, partitions and the idempotent writer."""

"""Domain: learning events routed into the seeds' tables (the SQL is db/domain/), and the parked
events that wait for their referent."""

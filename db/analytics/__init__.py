"""What the jobs compute (issue #10): one module per table family, SQL in constants."""

"""Windows: rolling statistics over the stored events (panes, the window stage, corrections)."""

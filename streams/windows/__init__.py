"""Windows: rolling statistics over the stored events. `input` is the window-input wire format,
`panes` the window and aggregate math, `state` the per-partition state, its fold and its changelog
records (both pure), `stage` the Faust stage around them (I/O, timers, rollups, corrections)."""

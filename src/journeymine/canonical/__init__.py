"""The raw layer made one model: persons and accounts stitched, touchpoints."""

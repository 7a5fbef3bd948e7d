"""The stages that turn a store into labels and segments, and the whole chain:
ingest, extract, label (with its state grids), segment, recipe and build.
See docs/architecture.md."""

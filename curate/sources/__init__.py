"""Reading sources: one adapter per recording or log format (curate.sources.adapters)
and the readers only adapters use (event reduction, TFRecord, pickles, video,
discovery of source units). See docs/architecture.md."""

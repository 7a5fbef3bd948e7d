"""Frozen executors for Stage 2: see ``curate.executors.base`` for the protocol."""

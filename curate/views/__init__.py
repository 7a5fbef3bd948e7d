"""Looking at a store: the HTML viewer and contact sheets. See docs/architecture.md."""

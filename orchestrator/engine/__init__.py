"""The step engine: dependency graph, scheduler, diff, run events. It knows nothing of Google:
kinds and their adapters do the API calls."""

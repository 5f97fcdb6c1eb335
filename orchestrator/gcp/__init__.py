"""Google's side as the orchestrator reaches it: clients, credentials, retries, operations."""

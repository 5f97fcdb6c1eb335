"""Fleets: one plan over many instances (tenants, environments), each with its own vars and
ledger, run by `provision fleet` or by any number of runners sharing a state."""

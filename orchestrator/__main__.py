"""`python -m orchestrator` runs the `provision` command."""

from orchestrator.cli import main

main()

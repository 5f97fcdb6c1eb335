"""Recovery tests reuse the engine tests' plan writer."""

from ..engine.conftest import write_plan

__all__ = ["write_plan"]

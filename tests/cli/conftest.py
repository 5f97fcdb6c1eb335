"""The CLI tests write plans the way the engine tests do."""

from ..engine.conftest import write_plan

__all__ = ["write_plan"]

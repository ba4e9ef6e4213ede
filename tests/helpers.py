"""Small building blocks the tests share (import with ``from helpers import ...``)."""

from badger_graph import ExpertPolicy


def tiny_policy(**kwargs) -> ExpertPolicy:
    """The tests' small expert policy: hidden 16, messages 8, inputs 8, identity 4."""
    return ExpertPolicy(16, 8, 8, 4, **kwargs)

"""An import graph's cycle, for the layout tests (``test_design_archs``, ``test_design_layout``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def first_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """The first cycle a depth-first walk of ``graph`` (node -> the nodes it imports) meets, as a path whose
    first and last nodes are the same; None when there is none."""
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*trail, nxt])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None

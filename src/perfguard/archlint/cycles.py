"""Import cycles: per strongly connected component, with the edges that break them.

Cycles are found in three layers. Import-time cycles use only runtime edges and fail at import.
Deferred cycles need at least one import inside a function, and typing cycles close only
through TYPE_CHECKING imports, so neither runs while the modules are being imported.

For each component the minimum feedback arc set (the fewest edges whose removal leaves no
cycle) is exact up to MAX_EXACT_NODES files. Larger components use the greedy ordering
heuristic of Eades, Lin and Smyth (1993), which is fast but may return more edges than needed.
"""

from __future__ import annotations

import enum
import itertools
import logging
from dataclasses import dataclass
from typing import Collection, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import networkx as nx

from perfguard.archlint.graph import EdgeKind, ImportEdge, ImportGraph

logger = logging.getLogger(__name__)

MAX_EXACT_NODES = 14
MAX_CYCLES_LISTED = 20
MAX_CYCLES_SCANNED = 5000


class CycleKind(enum.Enum):
    """When a cycle's imports all run."""

    import_time = "import-time"
    """Every edge is a runtime import, so importing any member runs the whole cycle."""
    deferred = "deferred"
    """At least one edge is an import inside a function and none is typing-only."""
    typing = "typing"
    """At least one edge is a TYPE_CHECKING import, so the cycle never runs."""


class BreakingMethod(enum.Enum):
    """Method that computed a component's breaking edges."""

    exact = "exact"
    greedy = "greedy"


_LAYER_EDGE_KINDS = {
    CycleKind.import_time: frozenset({EdgeKind.runtime}),
    CycleKind.deferred: frozenset({EdgeKind.runtime, EdgeKind.deferred}),
    CycleKind.typing: frozenset({EdgeKind.runtime, EdgeKind.deferred, EdgeKind.typing}),
}


@dataclass(frozen=True)
class Cycle:
    """One elementary cycle, starting at its smallest path, each edge in import order."""

    kind: CycleKind
    edges: Tuple[ImportEdge, ...]

    @property
    def paths(self) -> Tuple[str, ...]:
        return tuple(edge.importer for edge in self.edges)

    def describe(self) -> str:
        return " -> ".join(self.paths + (self.paths[0],))


@dataclass(frozen=True)
class CycleComponent:
    """The cycles of one kind inside one strongly connected component.

    `cycles` lists at most MAX_CYCLES_LISTED cycles, shortest first. `omitted_cycles` counts the
    cycles found but not listed. `complete` is false when enumeration stopped after
    MAX_CYCLES_SCANNED cycles, so more may exist.
    """

    kind: CycleKind
    paths: Tuple[str, ...]
    cycles: Tuple[Cycle, ...]
    omitted_cycles: int
    complete: bool
    breaking_edges: Tuple[ImportEdge, ...]
    breaking_method: BreakingMethod


def find_cycles(
    graph: ImportGraph, *, focus_paths: Optional[Collection[str]] = None
) -> Tuple[CycleComponent, ...]:
    """Find import cycles, grouped by component and kind, in a deterministic order.

    With `focus_paths`, cycles are still computed on the whole graph but only those through at
    least one focus path are kept, and components left without cycles are dropped.
    """
    focus = None if focus_paths is None else frozenset(focus_paths)
    components: List[CycleComponent] = []
    for kind in CycleKind:
        layer = _build_layer(graph, _LAYER_EDGE_KINDS[kind])
        for members in _sorted_components(layer):
            component = _analyze_component(layer.subgraph(members), kind, focus)
            if component is not None:
                components.append(component)
    return tuple(components)


def _build_layer(graph: ImportGraph, kinds: FrozenSet[EdgeKind]) -> nx.DiGraph:
    layer = nx.DiGraph()
    for edge in graph.edges:
        if edge.kind in kinds:
            layer.add_edge(edge.importer, edge.imported, edge=edge)
    return layer


def _sorted_components(layer: nx.DiGraph) -> List[Tuple[str, ...]]:
    components = [
        tuple(sorted(members))
        for members in nx.strongly_connected_components(layer)
        if len(members) > 1
    ]
    return sorted(components)


def _analyze_component(
    subgraph: nx.DiGraph, kind: CycleKind, focus: Optional[FrozenSet[str]]
) -> Optional[CycleComponent]:
    ordered = _ordered_copy(subgraph)
    cycles, complete = _enumerate_cycles(ordered, kind)
    if focus is not None:
        cycles = [cycle for cycle in cycles if focus.intersection(cycle.paths)]
    if not cycles:
        return None
    breaking_edges, method = find_breaking_edges(ordered)
    return CycleComponent(
        kind=kind,
        paths=tuple(sorted(ordered.nodes)),
        cycles=tuple(cycles[:MAX_CYCLES_LISTED]),
        omitted_cycles=max(len(cycles) - MAX_CYCLES_LISTED, 0),
        complete=complete,
        breaking_edges=breaking_edges,
        breaking_method=method,
    )


def _ordered_copy(subgraph: nx.DiGraph) -> nx.DiGraph:
    """Copy a graph with nodes and edges inserted in sorted order, for stable enumeration."""
    ordered = nx.DiGraph()
    ordered.add_nodes_from(sorted(subgraph.nodes))
    for importer, imported in sorted(subgraph.edges):
        ordered.add_edge(importer, imported, edge=subgraph.edges[importer, imported]["edge"])
    return ordered


def _enumerate_cycles(graph: nx.DiGraph, kind: CycleKind) -> Tuple[List[Cycle], bool]:
    """List the cycles of `graph` whose kind is `kind`, at most MAX_CYCLES_SCANNED of them.

    networkx walks components that it keeps in sets, so with string nodes the walk, and which
    cycles fall under the cap, would change with each process's string hash seed. Nodes are
    therefore numbered in sorted order, since integers hash to themselves.
    """
    names = sorted(graph.nodes)
    numbered = nx.DiGraph()
    numbered.add_nodes_from(range(len(names)))
    number = {name: index for index, name in enumerate(names)}
    numbered.add_edges_from(
        sorted((number[importer], number[imported]) for importer, imported in graph.edges)
    )
    scanned = [
        [names[index] for index in cycle]
        for cycle in itertools.islice(nx.simple_cycles(numbered), MAX_CYCLES_SCANNED + 1)
    ]
    complete = len(scanned) <= MAX_CYCLES_SCANNED
    if not complete:
        scanned = scanned[:MAX_CYCLES_SCANNED]
        logger.warning(
            "Stopped listing %s import cycles after %d in a component of %d files.",
            kind.value,
            MAX_CYCLES_SCANNED,
            graph.number_of_nodes(),
        )
    edge_by_pair = {
        (importer, imported): data for importer, imported, data in graph.edges.data("edge")
    }
    cycles = []
    for nodes in scanned:
        edges = _rotated_edges(edge_by_pair, nodes)
        if _cycle_kind(edges) is kind:
            cycles.append(Cycle(kind, edges))
    cycles.sort(key=lambda cycle: (len(cycle.edges), [edge.importer for edge in cycle.edges]))
    return cycles, complete


def _rotated_edges(
    edge_by_pair: Mapping[Tuple[str, str], ImportEdge], nodes: Sequence[str]
) -> Tuple[ImportEdge, ...]:
    start = nodes.index(min(nodes))
    rotated = list(nodes[start:]) + list(nodes[:start])
    pairs = zip(rotated, rotated[1:] + rotated[:1])
    return tuple(edge_by_pair[pair] for pair in pairs)


def _cycle_kind(edges: Sequence[ImportEdge]) -> CycleKind:
    deferred = False
    for edge in edges:
        if edge.kind is EdgeKind.typing:
            return CycleKind.typing
        if edge.kind is EdgeKind.deferred:
            deferred = True
    return CycleKind.deferred if deferred else CycleKind.import_time


def find_breaking_edges(graph: nx.DiGraph) -> Tuple[Tuple[ImportEdge, ...], BreakingMethod]:
    """Return a minimum set of edges whose removal leaves `graph` acyclic, and the method.

    The set is exact for graphs of up to MAX_EXACT_NODES nodes and greedy above that.
    """
    nodes = sorted(graph.nodes)
    if len(nodes) <= MAX_EXACT_NODES:
        order = _exact_order(graph, nodes)
        method = BreakingMethod.exact
    else:
        order = _greedy_order(graph)
        method = BreakingMethod.greedy
    position = {node: index for index, node in enumerate(order)}
    backward = [
        graph.edges[importer, imported]["edge"]
        for importer, imported in graph.edges
        if position[imported] < position[importer]
    ]
    return tuple(sorted(backward)), method


def _exact_order(graph: nx.DiGraph, nodes: Sequence[str]) -> List[str]:
    """Order nodes to minimise backward edges, by dynamic programming over node subsets.

    best[S] is the fewest backward edges among orderings that place the set S first. Appending
    node v after S makes each edge from v into S backward.
    """
    index = {node: i for i, node in enumerate(nodes)}
    out_masks = [0] * len(nodes)
    for importer, imported in graph.edges:
        out_masks[index[importer]] |= 1 << index[imported]
    full = (1 << len(nodes)) - 1
    best: Dict[int, int] = {0: 0}
    choice: Dict[int, int] = {}
    for subset in range(full + 1):
        if subset not in best:
            continue
        for i in range(len(nodes)):
            if subset & (1 << i):
                continue
            extended = subset | (1 << i)
            cost = best[subset] + bin(out_masks[i] & subset).count("1")
            if extended not in best or cost < best[extended]:
                best[extended] = cost
                choice[extended] = i
    order: List[str] = []
    subset = full
    while subset:
        i = choice[subset]
        order.append(nodes[i])
        subset &= ~(1 << i)
    order.reverse()
    return order


def _greedy_order(graph: nx.DiGraph) -> List[str]:
    """Order nodes with the Eades-Lin-Smyth heuristic: sinks last, sources first.

    When neither exists, the node with the largest out-degree minus in-degree goes next, with
    ties broken by path so the result is deterministic.
    """
    remaining = nx.DiGraph(graph)
    head: List[str] = []
    tail: List[str] = []
    while remaining.number_of_nodes():
        sinks = sorted(node for node in remaining if remaining.out_degree(node) == 0)
        if sinks:
            tail[:0] = sinks
            remaining.remove_nodes_from(sinks)
            continue
        sources = sorted(node for node in remaining if remaining.in_degree(node) == 0)
        if sources:
            head.extend(sources)
            remaining.remove_nodes_from(sources)
            continue
        node = min(remaining, key=lambda n: (remaining.in_degree(n) - remaining.out_degree(n), n))
        head.append(node)
        remaining.remove_node(node)
    return head + tail

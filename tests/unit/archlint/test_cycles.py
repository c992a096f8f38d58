"""Edge classification and import cycles over in-memory graphs."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from typing import Dict, List, Sequence, Tuple

import networkx as nx
import pytest
from conftest import edge_map, make_file, make_import  # pants: no-infer-dep

from perfguard.archlint.config import ArchLintConfig
from perfguard.archlint.cycles import (
    MAX_EXACT_NODES,
    BreakingMethod,
    CycleComponent,
    CycleKind,
    find_breaking_edges,
    find_cycles,
)
from perfguard.archlint.graph import (
    EdgeKind,
    ImportEdge,
    build_edges_from_imports,
    build_import_graph,
)
from perfguard.archlint.graph_rules import find_cycle_findings
from perfguard.archlint.model import FileAnalysis
from perfguard.archlint.rules import analyze
from perfguard.findings import Severity


def _two_file_cycle(a_context: str, b_context: str) -> List[FileAnalysis]:
    return [
        make_file("src/a.py", "a", make_import("b", 3, context=a_context)),
        make_file("src/b.py", "b", make_import("a", 5, context=b_context)),
    ]


@pytest.mark.parametrize(
    "a_context, b_context, kind, severity",
    [
        ("runtime", "runtime", CycleKind.import_time, Severity.critical),
        ("runtime", "deferred", CycleKind.deferred, Severity.warning),
        ("deferred", "deferred", CycleKind.deferred, Severity.warning),
        ("runtime", "typing", CycleKind.typing, Severity.info),
        ("deferred", "typing", CycleKind.typing, Severity.info),
    ],
)
def test_cycle_kind_and_severity(
    a_context: str, b_context: str, kind: CycleKind, severity: Severity
) -> None:
    files = _two_file_cycle(a_context, b_context)

    result = analyze(files, ArchLintConfig())

    cycles = [f for f in result.findings if f.rule_id == "import-cycle"]
    assert len(cycles) == 1
    assert cycles[0].severity is severity
    assert cycles[0].data["cycle_kind"] == kind.value
    assert cycles[0].message == f"{kind.value} import cycle: src/a.py -> src/b.py -> src/a.py"
    assert cycles[0].related[0].line == 3
    assert cycles[0].related[1].line == 5
    assert result.blocking is (kind is CycleKind.import_time)


def test_edge_kind_prefers_runtime() -> None:
    importer = make_file(
        "src/a.py",
        "a",
        make_import("b", 2, context="typing"),
        make_import("b", 9, context="deferred"),
        make_import("b", 7, context="runtime"),
    )
    imported = make_file("src/b.py", "b")

    graph = build_import_graph([importer, imported], edge_map(("src/a.py", "src/b.py")))

    assert graph.edges == (ImportEdge("src/a.py", "src/b.py", EdgeKind.runtime, 7, 1),)


def test_unmatched_edge_is_explicit_runtime() -> None:
    files = [make_file("src/a.py", "a"), make_file("src/b.py", "b")]

    graph = build_import_graph(files, edge_map(("src/a.py", "src/b.py")))

    edge = graph.edges[0]
    assert edge.kind is EdgeKind.runtime
    assert edge.explicit is True
    assert edge.line == 0


def test_from_package_import_submodule() -> None:
    importer = make_file(
        "src/app.py", "app", make_import("pkg", 4, kind="from", names=["sub"], context="deferred")
    )
    sub = make_file("src/pkg/sub.py", "pkg.sub")

    graph = build_import_graph([importer, sub], edge_map(("src/app.py", "src/pkg/sub.py")))

    assert graph.edges[0].kind is EdgeKind.deferred
    assert graph.edges[0].line == 4


def test_init_reexport_classifies_edge() -> None:
    importer = make_file(
        "src/app.py", "app", make_import("pkg", 6, kind="from", names=["Thing"], context="typing")
    )
    init = make_file(
        "src/pkg/__init__.py", "pkg", make_import("pkg.sub", 1, kind="from", names=["Thing"])
    )
    sub = make_file("src/pkg/sub.py", "pkg.sub")
    edges = edge_map(("src/app.py", "src/pkg/sub.py"), ("src/app.py", "src/pkg/__init__.py"))

    graph = build_import_graph([importer, init, sub], edges)

    kinds = {edge.imported: (edge.kind, edge.explicit, edge.line) for edge in graph.edges}
    assert kinds["src/pkg/sub.py"] == (EdgeKind.typing, False, 6)
    assert kinds["src/pkg/__init__.py"] == (EdgeKind.typing, False, 6)


def test_init_reexport_cycle_found() -> None:
    # pkg/__init__ re-exports Thing from pkg.sub, and pkg.sub imports app at runtime.
    files = [
        make_file("src/app.py", "app", make_import("pkg", 2, kind="from", names=["Thing"])),
        make_file(
            "src/pkg/__init__.py", "pkg", make_import("pkg.sub", 1, kind="from", names=["Thing"])
        ),
        make_file("src/pkg/sub.py", "pkg.sub", make_import("app", 3)),
    ]
    edges = edge_map(
        ("src/app.py", "src/pkg/sub.py"),
        ("src/pkg/__init__.py", "src/pkg/sub.py"),
        ("src/pkg/sub.py", "src/app.py"),
    )

    result = analyze(files, ArchLintConfig(), edges=edges)

    messages = [f.message for f in result.findings if f.rule_id == "import-cycle"]
    assert messages == ["import-time import cycle: src/app.py -> src/pkg/sub.py -> src/app.py"]


def _tangle() -> Tuple[List[FileAnalysis], Dict[str, List[str]]]:
    names = ["a", "b", "c", "d", "e"]
    pairs = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "c"), ("b", "a")]
    files = [
        make_file(
            f"src/{name}.py",
            name,
            *[
                make_import(target, i + 1)
                for i, (source, target) in enumerate(pairs)
                if source == name
            ],
        )
        for name in names
    ]
    return files, edge_map(*[(f"src/{s}.py", f"src/{t}.py") for s, t in pairs])


def test_cycles_are_deterministic() -> None:
    files, edges = _tangle()
    expected = analyze(files, ArchLintConfig(), edges=edges)
    rng = random.Random(7)

    for _ in range(10):
        shuffled_files = list(files)
        rng.shuffle(shuffled_files)
        items = list(edges.items())
        rng.shuffle(items)
        shuffled_edges = {key: list(reversed(value)) for key, value in items}
        result = analyze(shuffled_files, ArchLintConfig(), edges=shuffled_edges)
        assert result.findings == expected.findings


_CAPPED_CYCLES_SCRIPT = """
import hashlib, itertools, sys
from perfguard.archlint.cycles import MAX_CYCLES_SCANNED, find_cycles
from perfguard.archlint.graph import EdgeKind, ImportEdge, ImportGraph
nodes = ["pkg/m%02d.py" % i for i in range(11)]
edges = sorted(ImportEdge(a, b, EdgeKind.runtime, 1, 0) for a, b in itertools.permutations(nodes, 2))
(component,) = find_cycles(ImportGraph(tuple(edges)))
assert not component.complete
assert component.omitted_cycles > 0, component.omitted_cycles
text = repr([[edge.describe() for edge in cycle.edges] for cycle in component.cycles])
print(hashlib.sha256(text.encode()).hexdigest())
"""


def test_capped_cycles_do_not_depend_on_hash_seed() -> None:
    # A complete graph of 11 files contains millions of cycles, so only the first
    # MAX_CYCLES_SCANNED are scanned. Which ones must not change from one process to the next.
    digests = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=os.pathsep.join(sys.path))
        result = subprocess.run(
            [sys.executable, "-c", _CAPPED_CYCLES_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        digests.add(result.stdout.strip())
    assert len(digests) == 1


def test_cycles_listed_once_rotated() -> None:
    files, edges = _tangle()

    result = analyze(files, ArchLintConfig(), edges=edges)

    messages = [f.message for f in result.findings if f.rule_id == "import-cycle"]
    assert messages == [
        "import-time import cycle: src/a.py -> src/b.py -> src/a.py",
        "import-time import cycle: src/a.py -> src/b.py -> src/c.py -> src/a.py",
        "import-time import cycle: src/c.py -> src/d.py -> src/e.py -> src/c.py",
    ]


def test_minimum_breaking_edges() -> None:
    files, edges = _tangle()
    graph = build_import_graph(files, edges)

    (component,) = find_cycles(graph)

    assert component.breaking_method is BreakingMethod.exact
    broken = {(edge.importer, edge.imported) for edge in component.breaking_edges}
    # a->b is the only edge shared by a-b-a and a-b-c-a, and c-d-e-c needs one more.
    assert len(broken) == 2
    assert ("src/a.py", "src/b.py") in broken
    assert (
        len(broken & {("src/c.py", "src/d.py"), ("src/d.py", "src/e.py"), ("src/e.py", "src/c.py")})
        == 1
    )


def _brute_force_minimum(pairs: Sequence[Tuple[str, str]]) -> int:
    for size in range(len(pairs) + 1):
        for removed in itertools.combinations(pairs, size):
            graph = nx.DiGraph()
            graph.add_edges_from(pair for pair in pairs if pair not in removed)
            if nx.is_directed_acyclic_graph(graph):
                return size
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", range(25))
def test_exact_breaking_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(rng.randint(3, 6))]
    pairs = sorted({(a, b) for a in nodes for b in nodes if a != b and rng.random() < 0.45})
    graph = nx.DiGraph()
    for a, b in pairs:
        graph.add_edge(a, b, edge=ImportEdge(a, b, EdgeKind.runtime))

    breaking, method = find_breaking_edges(graph)

    assert method is BreakingMethod.exact
    assert len(breaking) == _brute_force_minimum(pairs)
    remaining = nx.DiGraph(graph)
    remaining.remove_edges_from((edge.importer, edge.imported) for edge in breaking)
    assert nx.is_directed_acyclic_graph(remaining)


def test_large_component_uses_greedy() -> None:
    count = MAX_EXACT_NODES + 6
    graph = nx.DiGraph()
    for i in range(count):
        for step in (1, 3):
            a, b = f"m{i:02d}", f"m{(i + step) % count:02d}"
            graph.add_edge(a, b, edge=ImportEdge(a, b, EdgeKind.runtime))

    breaking, method = find_breaking_edges(graph)

    assert method is BreakingMethod.greedy
    remaining = nx.DiGraph(graph)
    remaining.remove_edges_from((edge.importer, edge.imported) for edge in breaking)
    assert nx.is_directed_acyclic_graph(remaining)


def test_greedy_is_named_in_fix() -> None:
    count = MAX_EXACT_NODES + 1
    files = [
        make_file(f"src/m{i:02d}.py", f"m{i:02d}", make_import(f"m{(i + 1) % count:02d}", 1))
        for i in range(count)
    ]

    result = analyze(files, ArchLintConfig())

    (finding,) = [f for f in result.findings if f.rule_id == "import-cycle"]
    assert "greedy estimate" in finding.fix
    assert finding.data["breaking_method"] == "greedy"


def test_focus_paths_filter_cycles() -> None:
    files, edges = _tangle()

    result = analyze(files, ArchLintConfig(), edges=edges, focus_paths=["src/d.py"])

    messages = [f.message for f in result.findings if f.rule_id == "import-cycle"]
    assert messages == ["import-time import cycle: src/c.py -> src/d.py -> src/e.py -> src/c.py"]


def test_edges_from_imports_resolve_submodules() -> None:
    files = [
        make_file(
            "src/app.py",
            "app",
            make_import("pkg", 1, kind="from", names=["sub", "Name"]),
            make_import("pkg.sub", 2),
            make_import("json", 3),
        ),
        make_file("src/pkg/__init__.py", "pkg"),
        make_file("src/pkg/sub.py", "pkg.sub"),
    ]

    edges = build_edges_from_imports(files)

    assert edges == {"src/app.py": ("src/pkg/__init__.py", "src/pkg/sub.py")}


@pytest.mark.parametrize(
    "complete, expected",
    [(True, "3 more import-time import cycles"), (False, "at least 3 more import-time")],
)
def test_omitted_cycles_message(complete: bool, expected: str) -> None:
    edge = ImportEdge("a.py", "b.py", EdgeKind.runtime, 1, 1)
    component = CycleComponent(
        kind=CycleKind.import_time,
        paths=("a.py", "b.py"),
        cycles=(),
        omitted_cycles=3,
        complete=complete,
        breaking_edges=(edge,),
        breaking_method=BreakingMethod.exact,
    )

    findings = list(find_cycle_findings([component], ArchLintConfig(), {}))

    assert len(findings) == 1
    assert findings[0].message.startswith(expected)
    assert "or more more" not in findings[0].message

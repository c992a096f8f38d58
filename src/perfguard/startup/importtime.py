"""Parse CPython `-X importtime` output into per-module times and the import tree.

CPython 3.7+ writes one line per import to stderr after the import finishes, so a package
appears after the modules it imported:

    import time: self [us] | cumulative | imported package
    import time:       120 |        120 |     _json
    import time:       904 |       1024 |   json.decoder

The package column is indented by two spaces per nesting level. With `-X importtime=2`
(CPython 3.14+) imports of modules that were already loaded appear as `cached | cached`.
Lines that do not match (program output, warnings) are skipped and counted. A repeated header
starts the profile of a new process, as happens when a launcher such as a pex re-executes the
interpreter with `PYTHONPROFILEIMPORTTIME` inherited.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import statistics
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

# Top-level packages of the pex launcher (pex 2.1): its bootstrap code (`pex`, vendored libraries
# included) and the `__pex__` and `_pex` import hooks. Their imports are the launcher's work,
# not the program's.
LAUNCHER_PACKAGES = ("__pex__", "_pex", "pex")

_HEADER = re.compile(r"import time:\s+self \[us\] \|\s+cumulative \|\s+imported package")
# Groups: self time, cumulative time, indentation, module name. Self time can be negative when
# imports in two threads overlap, because CPython subtracts the other thread's time.
_LINE = re.compile(r"import time:\s+(-?\d+|cached)\s+\|\s+(-?\d+|cached)\s+\| ( *)([^\s|]+)\s*$")


@dataclass(frozen=True)
class ImportNode:
    """One line of importtime output, placed in the import tree.

    `parent` and `children` are indexes into `ImportProfile.nodes`. `process` counts the
    headers seen before the line, starting at 0. A cached node was already loaded, so its
    times are 0.
    """

    name: str
    self_us: int
    cumulative_us: int
    depth: int
    cached: bool
    process: int
    line_number: int
    parent: Optional[int]
    children: Tuple[int, ...]


@dataclass(frozen=True)
class ModuleTiming:
    """Import cost of one module, summed over every non-cached import of it (in µs)."""

    name: str
    self_us: int
    cumulative_us: int
    import_count: int


@dataclass(frozen=True)
class ImportProfile:
    """The parsed importtime output of one command run.

    `roots` are the nodes without a parent, in output order. `ignored_lines` counts non-empty
    lines that were not importtime lines.
    """

    nodes: Tuple[ImportNode, ...]
    roots: Tuple[int, ...]
    modules: Mapping[str, ModuleTiming]
    process_count: int
    ignored_lines: int

    @property
    def module_names(self) -> frozenset[str]:
        return frozenset(self.modules)

    @property
    def total_us(self) -> int:
        """Return the summed cumulative time of all top-level imports in all processes.

        Imports in concurrent threads overlap in time, so the sum can exceed the elapsed time.
        """
        return sum(self.nodes[i].cumulative_us for i in self.roots if not self.nodes[i].cached)

    def find_first_node(self, module: str) -> Optional[ImportNode]:
        """Return the first non-cached import of `module`, or None if it was never loaded."""
        for node in self.nodes:
            if node.name == module and not node.cached:
                return node
        return None

    def import_chain(self, module: str) -> Tuple[str, ...]:
        """Return the modules from a top-level import down to the first import of `module`.

        The first element is the top-level import and the last is `module` itself. The result
        is empty when the module was never loaded.
        """
        node = self.find_first_node(module)
        return self.chain_to(node) if node is not None else ()

    @functools.cached_property
    def launcher_nodes(self) -> frozenset[int]:
        """Return the indexes of the nodes that the launcher imported, with their subtrees.

        In each process these are the top-level imports of LAUNCHER_PACKAGES and the top-level
        imports between the first and last of them, such as the platform probes of pex.

        NOTE: a program that imports `pex` itself at top level has that import, and everything
        it imported at top level since the launcher finished, counted as launcher work, because
        the output does not say which code ran an import.
        """
        spans: Dict[int, Tuple[int, int]] = {}
        for position, index in enumerate(self.roots):
            node = self.nodes[index]
            if is_launcher_module(node.name):
                first, _ = spans.get(node.process, (position, position))
                spans[node.process] = (first, position)
        stack = [
            index
            for position, index in enumerate(self.roots)
            if self.nodes[index].process in spans
            and spans[self.nodes[index].process][0]
            <= position
            <= spans[self.nodes[index].process][1]
        ]
        found: set[int] = set()
        while stack:
            index = stack.pop()
            found.add(index)
            stack.extend(self.nodes[index].children)
        return frozenset(found)

    @property
    def launcher_us(self) -> int:
        """Return the summed cumulative time of the launcher's top-level imports."""
        return sum(
            self.nodes[i].cumulative_us
            for i in self.roots
            if i in self.launcher_nodes and not self.nodes[i].cached
        )

    @property
    def launcher_process_count(self) -> int:
        """Return how many processes imported launcher code, one per interpreter start."""
        return len({self.nodes[i].process for i in self.launcher_nodes})

    def without_launcher(self) -> ImportProfile:
        """Return the profile without the launcher's imports and the imports below them."""
        excluded = self.launcher_nodes
        if not excluded:
            return self
        new_index: Dict[int, int] = {}
        for index in range(len(self.nodes)):
            if index not in excluded:
                new_index[index] = len(new_index)
        nodes = tuple(
            dataclasses.replace(
                node,
                parent=None if node.parent is None else new_index[node.parent],
                children=tuple(new_index[c] for c in node.children),
            )
            for index, node in enumerate(self.nodes)
            if index not in excluded
        )
        return ImportProfile(
            nodes=nodes,
            roots=tuple(new_index[i] for i in self.roots if i not in excluded),
            modules=_sum_by_module(nodes),
            process_count=self.process_count,
            ignored_lines=self.ignored_lines,
        )

    def chain_to(self, node: ImportNode) -> Tuple[str, ...]:
        """Return the module names from the top-level import down to `node`."""
        chain: List[str] = []
        current: Optional[ImportNode] = node
        while current is not None:
            chain.append(current.name)
            current = self.nodes[current.parent] if current.parent is not None else None
        return tuple(reversed(chain))


def parse_importtime(text: str) -> ImportProfile:
    """Parse importtime output (usually a process's whole stderr) into an ImportProfile."""
    builder = _TreeBuilder()
    ignored = 0
    for line_number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.rstrip("\r")
        if _HEADER.search(line):
            builder.start_process()
            continue
        match = _LINE.search(line)
        if match is None:
            ignored += 1 if line.strip() else 0
            continue
        if match.start() > 0:
            # Program output written without a newline just before the import finished.
            ignored += 1
        self_text, cumulative_text, indent, name = match.groups()
        cached = self_text == "cached" or cumulative_text == "cached"
        builder.add(
            name=name,
            self_us=0 if cached else int(self_text),
            cumulative_us=0 if cached else int(cumulative_text),
            depth=len(indent) // 2,
            cached=cached,
            line_number=line_number,
        )
    profile = builder.build(ignored)
    logger.debug(
        "Parsed importtime output: %d imports of %d modules in %d processes, %d other lines.",
        len(profile.nodes),
        len(profile.modules),
        profile.process_count,
        ignored,
    )
    return profile


def summarize_runs(profiles: Sequence[ImportProfile]) -> Mapping[str, ModuleTiming]:
    """Return each module's median self and cumulative time over several profiled runs.

    A module missing from some runs gets the median over the runs that loaded it.
    """
    if not profiles:
        return {}
    if len(profiles) == 1:
        return dict(profiles[0].modules)
    by_module: Dict[str, List[ModuleTiming]] = {}
    for profile in profiles:
        for timing in profile.modules.values():
            by_module.setdefault(timing.name, []).append(timing)
    return {
        name: ModuleTiming(
            name=name,
            self_us=int(statistics.median(t.self_us for t in timings)),
            cumulative_us=int(statistics.median(t.cumulative_us for t in timings)),
            import_count=max(t.import_count for t in timings),
        )
        for name, timings in sorted(by_module.items())
    }


def is_same_or_submodule(module: str, package: str) -> bool:
    """Return True if `module` is `package` or inside it (`numpy.linalg`, but not `numpyro`)."""
    return module == package or module.startswith(package + ".")


def is_launcher_module(module: str) -> bool:
    return top_level_package(module) in LAUNCHER_PACKAGES


def find_loaded(modules: Iterable[str], package: str) -> Tuple[str, ...]:
    """Return the loaded modules that are `package` or its submodules, sorted."""
    return tuple(sorted(m for m in modules if is_same_or_submodule(m, package)))


class _TreeBuilder:
    """Turns the post-order importtime stream into a tree.

    A line at depth d adopts the pending lines deeper than d that precede it, because CPython
    prints a module after everything it imported. Lines left pending when a new process starts
    or the text ends become roots.

    NOTE: imports running at the same time in several threads share one nesting counter and one
    child-time total in CPython, so their lines can carry the other thread's depth and a
    negative self time. Such lines still land in the tree, possibly under the wrong parent.
    """

    def __init__(self) -> None:
        self._nodes: List[ImportNode] = []
        self._parents: Dict[int, int] = {}
        self._pending: List[int] = []
        self._roots: List[int] = []
        self._process = 0
        self._headers = 0

    def start_process(self) -> None:
        self._headers += 1
        if self._headers > 1 or self._nodes:
            self._flush_pending()
            self._process += 1

    def add(
        self,
        *,
        name: str,
        self_us: int,
        cumulative_us: int,
        depth: int,
        cached: bool,
        line_number: int,
    ) -> None:
        index = len(self._nodes)
        children: List[int] = []
        while self._pending and self._nodes[self._pending[-1]].depth > depth:
            child = self._pending.pop()
            if self._nodes[child].cumulative_us > cumulative_us:
                # A child cannot take longer than its importer, so this line came from an
                # import in another thread. Its importer is unknown, so it becomes a root.
                self._roots.append(child)
            else:
                children.append(child)
        for child in children:
            self._parents[child] = index
        node = ImportNode(
            name=name,
            self_us=self_us,
            cumulative_us=cumulative_us,
            depth=depth,
            cached=cached,
            process=self._process,
            line_number=line_number,
            parent=None,
            children=tuple(reversed(children)),
        )
        self._nodes.append(node)
        self._pending.append(index)

    def _flush_pending(self) -> None:
        self._roots.extend(self._pending)
        self._pending = []

    def build(self, ignored_lines: int) -> ImportProfile:
        self._flush_pending()
        nodes = tuple(
            dataclasses.replace(node, parent=self._parents.get(index))
            for index, node in enumerate(self._nodes)
        )
        return ImportProfile(
            nodes=nodes,
            roots=tuple(sorted(self._roots)),
            modules=_sum_by_module(nodes),
            process_count=self._process + 1 if nodes else 0,
            ignored_lines=ignored_lines,
        )


def _sum_by_module(nodes: Sequence[ImportNode]) -> Mapping[str, ModuleTiming]:
    totals: Dict[str, ModuleTiming] = {}
    for node in nodes:
        previous = totals.get(node.name)
        if node.cached:
            if previous is None:
                totals[node.name] = ModuleTiming(node.name, 0, 0, 0)
            continue
        if previous is None:
            totals[node.name] = ModuleTiming(node.name, node.self_us, node.cumulative_us, 1)
        else:
            totals[node.name] = ModuleTiming(
                node.name,
                previous.self_us + node.self_us,
                previous.cumulative_us + node.cumulative_us,
                previous.import_count + 1,
            )
    return dict(sorted(totals.items()))


def top_level_package(module: str) -> str:
    return module.split(".", 1)[0]


def sum_self_by_package(modules: Iterable[ModuleTiming]) -> Dict[str, int]:
    """Return the summed self time (µs) of each top-level package's modules, sorted by name.

    Self times do not overlap, so this is what each package costs on its own, excluding the
    other packages it imports.
    """
    totals: Dict[str, int] = {}
    for timing in modules:
        package = top_level_package(timing.name)
        totals[package] = totals.get(package, 0) + timing.self_us
    return dict(sorted(totals.items()))


def find_entry_nodes(profile: ImportProfile, package: str) -> Tuple[ImportNode, ...]:
    """Return the non-cached imports of `package` or its submodules whose importer is outside it.

    Their cumulative times add up to what loading the package cost, dependencies included.
    """
    entries = []
    for node in profile.nodes:
        if node.cached or not is_same_or_submodule(node.name, package):
            continue
        parent = profile.nodes[node.parent] if node.parent is not None else None
        if parent is None or not is_same_or_submodule(parent.name, package):
            entries.append(node)
    return tuple(entries)

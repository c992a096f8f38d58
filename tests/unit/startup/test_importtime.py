from __future__ import annotations

from pathlib import Path

import pytest

from perfguard.startup.importtime import (
    find_entry_nodes,
    find_loaded,
    is_same_or_submodule,
    parse_importtime,
    sum_self_by_package,
    summarize_runs,
)

DATA = Path(__file__).parent / "data"

# One row per recording: node count, module count, processes, ignored lines, root count,
# json (self, cumulative) µs, csv (self, cumulative) µs and the summed root cumulative µs.
RECORDINGS = [
    ("importtime-3.8.txt", 98, 98, 1, 2, 14, (211, 8153), (2553, 3606), 36255),
    ("importtime-3.9.txt", 99, 99, 1, 2, 14, (177, 3667), (670, 871), 31923),
    ("importtime-3.10.txt", 96, 96, 1, 2, 13, (313, 8289), (589, 916), 36405),
    ("importtime-3.11.txt", 133, 129, 1, 2, 11, (246, 1584), (399, 608), 54746),
    ("importtime-3.12.txt", 98, 98, 1, 2, 13, (249, 5204), (2751, 3775), 40719),
    ("importtime-3.13.txt", 81, 81, 1, 3, 12, (225, 7910), (961, 1921), 32199),
    ("importtime2-3.13.txt", 81, 81, 1, 3, 12, (214, 7934), (398, 576), 27044),
    ("importtime-exec-3.11.txt", 201, 100, 2, 0, 16, (249, 1666), (343, 519), 59297),
]


@pytest.mark.parametrize(
    "name, nodes, modules, processes, ignored, roots, json_us, csv_us, total_us", RECORDINGS
)
def test_recorded_output(
    name: str,
    nodes: int,
    modules: int,
    processes: int,
    ignored: int,
    roots: int,
    json_us: tuple[int, int],
    csv_us: tuple[int, int],
    total_us: int,
) -> None:
    profile = parse_importtime((DATA / name).read_text())

    assert len(profile.nodes) == nodes
    assert len(profile.modules) == modules
    assert profile.process_count == processes
    assert profile.ignored_lines == ignored
    assert len(profile.roots) == roots
    assert (profile.modules["json"].self_us, profile.modules["json"].cumulative_us) == json_us
    assert (profile.modules["csv"].self_us, profile.modules["csv"].cumulative_us) == csv_us
    assert profile.total_us == total_us
    assert profile.import_chain("json.scanner") == ("json", "json.decoder", "json.scanner")
    assert profile.import_chain("_csv") == ("csv", "_csv")
    if "exec" not in name:
        assert profile.import_chain("email.parser")[-1] == "email.parser"


def test_children_sum_to_cumulative() -> None:
    profile = parse_importtime((DATA / "importtime-3.12.txt").read_text())

    for node in profile.nodes:
        children_us = sum(profile.nodes[i].cumulative_us for i in node.children)
        # CPython converts each figure from ns to whole µs separately, so sums drift by a few µs.
        drift = node.cumulative_us - node.self_us - children_us
        assert abs(drift) <= len(node.children) + 1, node.name


def test_failed_imports_repeat() -> None:
    # site in 3.11 tries `import nt` five times; importtime lists failed attempts too.
    profile = parse_importtime((DATA / "importtime-3.11.txt").read_text())

    assert profile.modules["nt"].import_count == 5
    assert profile.modules["nt"].self_us == 54 + 157 + 65 + 44 + 32


def test_exec_second_process() -> None:
    profile = parse_importtime((DATA / "importtime-exec-3.11.txt").read_text())

    assert [profile.nodes[i].process for i in profile.roots].count(1) == 8
    assert profile.modules["json"].import_count == 1
    assert profile.modules["encodings"].import_count == 2
    assert profile.find_first_node("json").process == 1  # type: ignore[union-attr]
    assert profile.find_first_node("csv").process == 0  # type: ignore[union-attr]


def test_concurrent_thread_imports() -> None:
    # Two threads imported a_mod and b_mod at the same time; CPython printed a_mod at depth 2
    # just before b_child at depth 1, and gave b_child a negative self time.
    profile = parse_importtime((DATA / "importtime-threads-3.12.txt").read_text())

    assert profile.ignored_lines == 0
    assert len(profile.nodes) == 55
    assert profile.modules["b_child"].self_us == -54477
    assert profile.import_chain("a_child") == ("a_mod", "a_child")
    assert profile.import_chain("b_child") == ("b_mod", "b_child")
    a_mod = profile.find_first_node("a_mod")
    assert a_mod is not None
    assert a_mod.parent is None
    assert profile.total_us == 217587


def test_cached_imports_314() -> None:
    profile = parse_importtime((DATA / "importtime2-3.14.txt").read_text())

    assert profile.ignored_lines == 3
    assert len(profile.nodes) == 15
    assert sum(node.cached for node in profile.nodes) == 4
    assert profile.modules["os"].import_count == 0
    assert profile.modules["_io"].import_count == 1
    assert profile.import_chain("_wmi") == ("uuid", "platform", "_wmi")
    assert profile.total_us == 1764 + 408 + 30487 + 1504
    uuid = profile.find_first_node("uuid")
    assert uuid is not None
    assert [profile.nodes[i].name for i in uuid.children] == [
        "_io",
        "os",
        "sys",
        "platform",
        "_uuid",
    ]


def test_missing_header_and_noise() -> None:
    text = (
        "Starting app\n"
        "import time:       10 |         10 |   b\r\n"
        "half a line import time:       20 |         30 | a\n"
        "Traceback (most recent call last):\n"
        "\n"
    )

    profile = parse_importtime(text)

    assert profile.import_chain("b") == ("a", "b")
    assert profile.modules["a"].cumulative_us == 30
    assert profile.ignored_lines == 3
    assert profile.process_count == 1


def test_orphans_become_roots() -> None:
    # Lines deeper than anything that follows them (output cut off, or a thread's imports).
    text = (
        "import time:        5 |          5 |       deep\n"
        "import time:        7 |          7 |   child\n"
    )

    profile = parse_importtime(text)

    assert [profile.nodes[i].name for i in profile.roots] == ["child"]
    assert profile.import_chain("deep") == ("child", "deep")
    assert parse_importtime("").process_count == 0


def test_summarize_runs_median() -> None:
    runs = [parse_importtime(f"import time: {s} | {s} | m\n") for s in (10, 30, 20)]

    summary = summarize_runs(runs)

    assert summary["m"].self_us == 20
    assert summary["m"].cumulative_us == 20


def test_submodule_matching() -> None:
    assert is_same_or_submodule("numpy", "numpy")
    assert is_same_or_submodule("numpy.linalg", "numpy")
    assert not is_same_or_submodule("numpyro", "numpy")
    assert not is_same_or_submodule("num", "numpy")
    assert find_loaded(["numpyro", "numpy.core", "numpy", "os"], "numpy") == ("numpy", "numpy.core")


def test_package_times_and_entries() -> None:
    text = (
        "import time:      100 |        100 |     pandas.core\n"
        "import time:       50 |         50 |       numpy\n"
        "import time:       30 |         80 |     pandas.io\n"
        "import time:       20 |        200 |   pandas\n"
        "import time:        5 |        205 | app\n"
        "import time:        9 |          9 | pandas.extra\n"
    )
    profile = parse_importtime(text)

    assert sum_self_by_package(profile.modules.values()) == {"app": 5, "numpy": 50, "pandas": 159}
    assert [n.name for n in find_entry_nodes(profile, "pandas")] == ["pandas", "pandas.extra"]


def test_pex_launcher_split() -> None:
    # `python pyflakes.pex --version` for a zipapp pex built by Pants 2.17 with pex 2.1.137:
    # the first process imports the bootstrap from the zip and re-executes the interpreter on
    # the unpacked pex, which imports the bootstrap again before running pyflakes.
    profile = parse_importtime((DATA / "importtime-pex-zipapp-3.9.txt").read_text())

    launcher_roots = [profile.nodes[i].name for i in profile.roots if i in profile.launcher_nodes]
    assert launcher_roots[:4] == [
        "pex.variables",
        "pex.layout",
        "pex.pex_bootstrapper",
        "_sysconfigdata__linux_x86_64-linux-gnu",
    ]
    # The pex probes for manylinux support between its own top-level imports.
    assert launcher_roots.count("_manylinux") == 70
    assert launcher_roots[-4:] == ["distutils.sysconfig", "certifi", "setproctitle", "pex"]
    assert profile.launcher_us == 827363
    assert profile.launcher_process_count == 2
    assert "email.parser" in profile.module_names

    program = profile.without_launcher()

    assert not [name for name in program.module_names if name.startswith("pex")]
    assert "email.parser" not in program.module_names
    assert "_manylinux" not in program.module_names
    assert "site" in program.module_names
    assert program.launcher_us == 0
    assert program.process_count == 2
    assert program.modules["pyflakes.checker"].cumulative_us == 22582
    assert program.import_chain("unittest.case") == (
        "pyflakes.checker",
        "doctest",
        "unittest",
        "unittest.case",
    )
    for node in program.nodes:
        for child in node.children:
            assert program.nodes[child].parent == program.nodes.index(node)


def test_profile_without_launcher_unchanged() -> None:
    profile = parse_importtime((DATA / "importtime-3.12.txt").read_text())

    assert profile.launcher_nodes == frozenset()
    assert profile.without_launcher() is profile

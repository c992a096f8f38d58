"""A self-contained HTML page with one import icicle chart per binary.

The page uses inline CSS and SVG only, with no scripts and no network access. In each chart
the x axis is import time in the importtime run and each row is one nesting level, so a box
sits under the module that imported it. Hovering a box shows its full name and times.
"""

from __future__ import annotations

import html
import zlib
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, Union

from perfguard.startup.budgets import BYTES_PER_MB, StartupReport
from perfguard.startup.clock import format_duration_ms
from perfguard.startup.importtime import ImportNode, ImportProfile, is_same_or_submodule

CHART_WIDTH = 1100
ROW_HEIGHT = 18
# Boxes narrower than this many pixels get no text label.
MIN_LABEL_WIDTH = 40
TOP_MODULES = 15
# The pex launcher's imports are grey, because they are not the program's.
LAUNCHER_COLOR = "#bdbdbd"

_CSS = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
h2 { margin-top: 32px; }
.summary { margin: 4px 0 12px; }
.blocking { color: #b00020; font-weight: 600; }
.passed { color: #1b7a32; font-weight: 600; }
svg text { font: 11px monospace; pointer-events: none; }
table { border-collapse: collapse; margin-top: 12px; }
td, th { border-bottom: 1px solid #ddd; padding: 2px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
ul.findings li { margin: 2px 0; }
"""


def render_html(reports: Sequence[StartupReport], title: str = "perfguard startup check") -> str:
    """Return the HTML page for the reports, in the order given."""
    sections = "\n".join(_render_report(report) for report in reports)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{sections}\n</body>\n</html>\n"
    )


def write_html(path: Union[str, Path], reports: Sequence[StartupReport]) -> None:
    Path(path).write_text(render_html(reports), encoding="utf-8")


def _render_report(report: StartupReport) -> str:
    status = (
        '<span class="blocking">failed</span>'
        if report.blocking
        else '<span class="passed">passed</span>'
    )
    parts = [
        f"<h2>{html.escape(report.binary)}</h2>",
        f'<p class="summary">{html.escape(report.format_text().splitlines()[0])} '
        f"&mdash; {status}</p>",
    ]
    parts.append(f'<p class="memory">{html.escape(_describe_memory(report))}</p>')
    if report.findings:
        items = "".join(
            f"<li><b>{html.escape(f.rule_id)}</b> [{f.severity.value}] {html.escape(f.message)}"
            "</li>"
            for f in report.findings
        )
        parts.append(f'<ul class="findings">{items}</ul>')
    if report.profile is None or not report.profile.nodes:
        parts.append("<p>No importtime profile was recorded.</p>")
    else:
        flagged = tuple(
            f.data.get("package", "")
            for f in report.findings
            if f.rule_id in ("prohibited-module", "slow-import")
        )
        parts.append(render_icicle(report.profile, flagged=flagged))
        parts.append(_render_top_modules(report.profile.without_launcher()))
    return "<section>\n" + "\n".join(parts) + "\n</section>"


def _describe_memory(report: StartupReport) -> str:
    if report.peak_rss_bytes is None:
        return "Peak memory: not measured, because no timed run succeeded."
    text = (
        f"Peak memory: {report.peak_rss_bytes / BYTES_PER_MB:.1f} MB in the largest single "
        f"process (kernel peak RSS, median of {report.sample_count} timed runs)"
    )
    if report.tree_rss_bytes is None:
        return text + "; the process tree was not measured."
    return (
        text + f"; {report.tree_rss_bytes / BYTES_PER_MB:.1f} MB summed over the process tree "
        f"(sampled from {report.tree_rss_source} in one untimed run)."
    )


def render_icicle(profile: ImportProfile, flagged: Sequence[str] = ()) -> str:
    """Return an SVG icicle chart of the profile.

    Modules in `flagged` packages are red and the pex launcher's imports are grey.
    """
    boxes = list(_layout(profile))
    launcher = profile.launcher_nodes
    total = sum(profile.nodes[i].cumulative_us for i in profile.roots) or 1
    scale = CHART_WIDTH / total
    depth = max((node.depth for _, node, _ in boxes), default=0) + 1
    height = depth * ROW_HEIGHT
    shapes: List[str] = []
    for index, node, offset_us in boxes:
        width = node.cumulative_us * scale
        if width < 0.5:
            continue
        x = offset_us * scale
        y = node.depth * ROW_HEIGHT
        color = LAUNCHER_COLOR if index in launcher else _color(node.name, flagged)
        tip = (
            f"{node.name}: {format_duration_ms(node.cumulative_us * 1000)} cumulative, "
            f"{format_duration_ms(node.self_us * 1000)} self"
        )
        shapes.append(
            f'<g><title>{html.escape(tip)}</title><rect x="{x:.1f}" y="{y}" '
            f'width="{width:.1f}" height="{ROW_HEIGHT - 1}" fill="{color}"></rect>'
        )
        if width >= MIN_LABEL_WIDTH:
            label = _fit_label(
                f"{node.name} {format_duration_ms(node.cumulative_us * 1000)}", width
            )
            shapes.append(
                f'<text x="{x + 3:.1f}" y="{y + ROW_HEIGHT - 5}">' f"{html.escape(label)}</text>"
            )
        shapes.append("</g>")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{height}" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" role="img" '
        f"aria-label=\"import icicle chart\">{''.join(shapes)}</svg>"
    )


def _layout(profile: ImportProfile) -> Iterable[Tuple[int, ImportNode, int]]:
    """Yield each non-cached node's index, the node, and its start offset in µs."""
    stack: List[Tuple[int, int]] = []
    offset = 0
    for root in profile.roots:
        stack.append((root, offset))
        offset += profile.nodes[root].cumulative_us
    while stack:
        index, start = stack.pop()
        node = profile.nodes[index]
        if node.cached:
            continue
        yield index, node, start
        child_start = start
        for child in node.children:
            stack.append((child, child_start))
            child_start += profile.nodes[child].cumulative_us


def _render_top_modules(profile: ImportProfile) -> str:
    timings = sorted(profile.modules.values(), key=lambda t: (-t.cumulative_us, t.name))
    rows = "".join(
        f"<tr><td>{html.escape(t.name)}</td>"
        f'<td class="num">{format_duration_ms(t.cumulative_us * 1000)}</td>'
        f'<td class="num">{format_duration_ms(t.self_us * 1000)}</td>'
        f"<td>{html.escape(' -> '.join(profile.import_chain(t.name)))}</td></tr>"
        for t in timings[:TOP_MODULES]
    )
    return (
        f"<table><caption>Top {TOP_MODULES} modules by cumulative import time</caption>"
        "<tr><th>module</th><th>cumulative</th><th>self</th><th>import chain</th></tr>"
        f"{rows}</table>"
    )


def _color(name: str, flagged: Sequence[str]) -> str:
    if any(package and is_same_or_submodule(name, package) for package in flagged):
        return "#e57373"
    # The hue depends only on the top-level package, so one package keeps one color.
    hue = zlib.crc32(name.split(".", 1)[0].encode()) % 360
    return f"hsl({hue}, 45%, 78%)"


def _fit_label(text: str, width: float) -> str:
    # Monospace 11px text is about 6.6 px per character.
    max_chars = int((width - 6) / 6.6)
    return text if len(text) <= max_chars else text[: max(max_chars - 1, 1)] + "…"

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from perfguard.startup.budgets import evaluate
from perfguard.startup.html import render_html, render_icicle, write_html
from perfguard.startup.importtime import parse_importtime

from .fakes import APP_IMPORTTIME, make_result, make_variant

DATA = Path(__file__).parent / "data"


def test_icicle_layout() -> None:
    svg = render_icicle(parse_importtime(APP_IMPORTTIME), flagged=("pandas",))

    boxes = re.findall(
        r'<title>([^:]+):.*?<rect x="([\d.]+)" y="(\d+)" width="([\d.]+)"' r'.*?fill="([^"]+)"', svg
    )
    by_name = {name: (float(x), int(y), float(width), fill) for name, x, y, width, fill in boxes}
    assert by_name["app"][:3] == (0.0, 0, 1100.0)
    assert by_name["json"][:2] == (0.0, 18)
    assert by_name["app.db"][0] == round(500 * 1100 / 123500, 1)
    assert by_name["pandas"][3] == "#e57373"
    assert by_name["pandas.core"][1] == 54
    assert "app 124 ms" in svg


def test_page_is_self_contained(tmp_path: Path) -> None:
    report = evaluate(make_result(make_variant([100.0] * 7)), binary="<app>")
    path = tmp_path / "startup.html"

    write_html(path, [report])

    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "&lt;app&gt;" in page
    assert "prohibited-module" in page
    assert "<script" not in page
    assert "https://" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_page_for_recorded_profile() -> None:
    text = (DATA / "importtime-exec-3.11.txt").read_text()
    report = evaluate(make_result(make_variant([100.0] * 7, importtime=text)))

    page = render_html([report])

    profile = parse_importtime(text)
    # Boxes narrower than half a pixel are left out of the 1100 px wide chart.
    visible = [n for n in profile.nodes if n.cumulative_us * 1100 / profile.total_us >= 0.5]
    assert len(visible) == 193
    assert page.count("<rect") == len(visible)
    assert "Top 15 modules by cumulative import time" in page


def test_page_without_profile() -> None:
    report = evaluate(make_result(make_variant([100.0] * 7, importtime=None)))

    assert "No importtime profile was recorded." in render_html([report])


def test_page_shows_both_memory_figures() -> None:
    variant = dataclasses.replace(
        make_variant([100.0] * 7, rss_mb=60.0, importtime=None),
        tree_rss_bytes=130_000_000,
        tree_rss_source="/proc",
        tree_rss_samples=30,
    )
    report = evaluate(make_result(variant))

    page = render_html([report])

    assert (
        "Peak memory: 60.0 MB in the largest single process (kernel peak RSS, median of 7 timed "
        "runs); 130.0 MB summed over the process tree (sampled from /proc in one untimed run)."
    ) in page
    assert "peak RSS 130.0 MB summed over the process tree" in page


def test_page_without_tree_memory() -> None:
    report = evaluate(make_result(make_variant([100.0] * 7, importtime=None)))

    page = render_html([report])

    assert "; the process tree was not measured." in page
    assert "process tree memory not measured" in page

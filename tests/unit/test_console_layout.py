"""The console's DAG layout (grandalf) and that its static files ship in the package."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from tusk.console import auth
from tusk.console.layout import layout

ROOT = Path(__file__).resolve().parents[2]


def test_layout_puts_inputs_above_what_they_feed_and_parts_side_by_side() -> None:
    edges = [("a", "p"), ("b", "p"), ("p", "q"), ("a", "q")]
    out = layout(["a", "b", "p", "q", "alone"], edges)
    box = {n.id: n for n in out.nodes}
    assert set(box) == {"a", "b", "p", "q", "alone"}
    for s, t in edges:
        assert box[s].y + box[s].h <= box[t].y, (s, t)
    assert {(r.source, r.target) for r in out.edges} == set(edges)
    assert all(len(r.points) >= 2 for r in out.edges)
    # nodes do not overlap, and everything is inside the drawing
    nodes = list(box.values())
    for i, m in enumerate(nodes):
        assert m.x >= 0 and m.x + m.w <= out.width and m.y >= 0 and m.y + m.h <= out.height
        for n in nodes[i + 1 :]:
            apart = m.x + m.w <= n.x or n.x + n.w <= m.x or m.y + m.h <= n.y or n.y + n.h <= m.y
            assert apart, (m, n)
    assert box["alone"].x >= max(n.x + n.w for n in nodes if n.id != "alone")


def test_empty_graph() -> None:
    out = layout([], [])
    assert out.nodes == [] and out.edges == [] and out.width > 0


def test_static_files_are_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["tusk.console"]
    static = ROOT / "tusk" / "console"
    files = [p.relative_to(static).as_posix() for p in (static / "static").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]  # fmt: skip
    assert "static/index.html" in files and "static/app.js" in files
    for f in files:
        assert any(fnmatch.fnmatch(f, g) for g in globs), f"{f} is not in package-data"


def test_session_cookie_is_not_the_token_and_csrf_needs_both_copies() -> None:
    assert "tok" not in auth.session_value("tok") and len(auth.session_value("tok")) == 64
    assert auth.session_value("a") != auth.session_value("b")
    jar = auth.cookies(b"tusk_csrf=abc; other=1; tusk_session=x")
    assert jar == {"tusk_csrf": "abc", "other": "1", "tusk_session": "x"}
    assert auth.csrf_ok(jar, b"abc")
    assert not auth.csrf_ok(jar, b"abd") and not auth.csrf_ok(jar, None)
    assert not auth.csrf_ok({}, b"")
    assert auth.is_public("/console/static/app.js") and not auth.is_public("/console/api/dag")

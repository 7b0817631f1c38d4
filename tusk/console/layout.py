"""The DAG's layout: node positions and edge polylines by grandalf's Sugiyama layering, so the
browser only draws what the server placed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

NODE_HEIGHT = 44.0
CHAR_WIDTH = 7.5  # of the node labels' font, roughly
GAP = 40.0  # between the separately laid out parts of a graph that is not connected
MARGIN = 20.0


@dataclass
class _Box:
    """What grandalf reads (w, h) and writes (xy: the centre) for one node."""

    w: float
    h: float
    xy: tuple[float, float] = (0.0, 0.0)


@dataclass
class _Path:
    """What grandalf writes for one edge: the points of its route."""

    points: list[tuple[float, float]] = field(default_factory=list)

    def setpath(self, pts: list[tuple[float, float]]) -> None:
        self.points = [(float(x), float(y)) for x, y in pts]


@dataclass(frozen=True)
class Placed:
    """A node's box: top-left corner and size."""

    id: str
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Route:
    source: str
    target: str
    points: list[tuple[float, float]]


@dataclass(frozen=True)
class Layout:
    nodes: list[Placed]
    edges: list[Route]
    width: float
    height: float


def node_width(label: str) -> float:
    return max(110.0, CHAR_WIDTH * len(label) + 36.0)


def layout(
    nodes: Sequence[str], edges: Sequence[tuple[str, str]], labels: Mapping[str, str] | None = None
) -> Layout:
    """Lay out a directed graph top-down: sources above what they feed. Each connected part is
    laid out on its own and the parts are put side by side. A node is as wide as its name, or as
    its longest line in ``labels``."""
    vertices = {n: Vertex(n) for n in nodes}
    for name, v in vertices.items():
        longest = max([name, *(labels or {}).get(name, "").splitlines()], key=len)
        v.view = _Box(node_width(longest), NODE_HEIGHT)
    links = []
    for a, b in edges:
        if a in vertices and b in vertices and a != b:
            e = Edge(vertices[a], vertices[b])
            e.view = _Path()
            links.append(e)
    graph = Graph(list(vertices.values()), links)
    placed: list[Placed] = []
    routes: list[Route] = []
    left, height = MARGIN, 0.0
    for part in graph.C:
        sug = SugiyamaLayout(part)
        sug.xspace, sug.yspace = 30, 36
        sug.init_all()
        sug.draw()
        boxes = [v.view for v in part.sV]
        x0 = min(b.xy[0] - b.w / 2 for b in boxes)
        y0 = min(b.xy[1] - b.h / 2 for b in boxes)
        dx, dy = left - x0, MARGIN - y0
        for v in part.sV:
            b = v.view
            placed.append(Placed(v.data, b.xy[0] - b.w / 2 + dx, b.xy[1] - b.h / 2 + dy, b.w, b.h))
        for e in part.sE:
            pts = [(x + dx, y + dy) for x, y in e.view.points]
            routes.append(Route(e.v[0].data, e.v[1].data, pts))
        right = max(b.xy[0] + b.w / 2 for b in boxes) + dx
        bottom = max(b.xy[1] + b.h / 2 for b in boxes) + dy
        left, height = right + GAP, max(height, bottom)
    width = left - GAP + MARGIN if placed else 2 * MARGIN
    return Layout(placed, routes, width, height + MARGIN if placed else 2 * MARGIN)

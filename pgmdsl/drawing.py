"""Drawing the factor graph in layers: Graphviz DOT always, PNG through matplotlib if installed.

The observed layers (visible and input) make the bottom row; every other
layer sits as many rows up as the fewest factors joining it to them (an
RBM's h one row up, a DBM's h2 two, a DBN's levels one above another),
and a factor between the layers it joins. The .dot pins every node there
(neato honours `pos="x,y!"`), so Graphviz and the PNG draw one picture.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

_LAYER_STYLE = {
    "visible": 'shape=circle, style=filled, fillcolor="#d0d0d0"',
    "hidden": "shape=circle",
    "input": 'shape=doublecircle, style=filled, fillcolor="#f0f0f0"',
    "pooled": "shape=circle, style=dashed",
}
_FILL = {"visible": "#d0d0d0", "input": "#f0f0f0", "hidden": "white", "pooled": "white"}
LAYER_SPACING = 2.4  # between layers of one row, in layout units (rows are 1 apart)
DOT_INCHES = 2.0  # a layout unit in the .dot: room for a layer's circle and a factor's box between rows
SIDE_SPACING = 0.55  # between a layer and the factors of its own (biases, lateral couplings) beside it


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _node_id(node) -> str:
    return _quote(f"{node[0]}:{node[1]}")


def layer_label(data: dict) -> str:
    """A layer node's label: its name, then its unit type and shape ('v', 'binary [784]')."""
    shape = "x".join(str(s) for s in data["shape"])
    return f"{data['name']}\n{data['unit'] or 'real'} [{shape}]"


def layer_levels(model) -> dict[str, int]:
    """{layer: row}: 0 for the observed layers, else the fewest factors on a path to one (a stack's level).

    A layer no factor joins to an observed one goes a row above the rest.
    """
    graph = model.graph
    layers = [data["name"] for _, data in graph.nodes(data=True) if data["kind"] == "layer"]
    levels = {name: 0 for name in layers if graph.nodes[("layer", name)]["role"] in ("visible", "input")}
    frontier = list(levels)
    while frontier:
        reached = []
        for name in frontier:
            for term in graph.neighbors(("layer", name)):
                for other in graph.neighbors(term):
                    if other[1] not in levels:
                        levels[other[1]] = levels[name] + 1
                        reached.append(other[1])
        frontier = reached
    top = max(levels.values(), default=-1) + 1
    return {name: levels.get(name, top) for name in layers}


def layered_positions(model) -> dict[tuple, tuple[float, float]]:
    """(x, y) of every node of model.graph: layers in rows by layer_levels, a row centred on x = 0; a factor
    joining several layers at their mean, one of a single layer beside it, factors at one place spread apart."""
    graph = model.graph
    levels = layer_levels(model)
    rows = defaultdict(list)
    for name, level in levels.items():
        rows[level].append(name)
    positions = {}
    for level, names in rows.items():
        for k, name in enumerate(names):
            positions[("layer", name)] = ((k - (len(names) - 1) / 2) * LAYER_SPACING, float(level))
    placed = defaultdict(list)
    for node, data in graph.nodes(data=True):
        if data["kind"] == "term":
            joined = sorted(graph.neighbors(node), key=lambda n: positions[n])
            placed[tuple(joined)].append(node)
    for joined, terms in placed.items():
        _place_terms(positions, joined, terms)
    return positions


def _place_terms(positions: dict, joined: tuple, terms: list) -> None:
    """Put the factors that join the same layers: beside a single layer (to its right, a small step up), or
    spread along the row between several."""
    xs, ys = zip(*(positions[n] for n in joined))
    if len(joined) == 1:
        for k, node in enumerate(terms):
            positions[node] = (xs[0] + SIDE_SPACING * (k + 1), ys[0] + 0.3)
        return
    x, y = sum(xs) / len(xs), sum(ys) / len(ys)
    for k, node in enumerate(terms):
        positions[node] = (x + (k - (len(terms) - 1) / 2) * SIDE_SPACING, y)


def to_dot(model) -> str:
    """The factor graph as a Graphviz DOT document (layers as circles, terms as squares), each node pinned at
    its place in the layered drawing (layered_positions)."""
    positions = layered_positions(model)
    lines = [f"graph {_quote(model.name)} {{", "  layout=neato; overlap=false; splines=true;"]
    for node, data in model.graph.nodes(data=True):
        x, y = positions[node]
        pos = f'pos="{x * DOT_INCHES:.3f},{y * DOT_INCHES:.3f}!"'
        if data["kind"] == "layer":
            style = _LAYER_STYLE[data["role"]]
            lines.append(f"  {_node_id(node)} [label={_quote(layer_label(data))}, {style}, {pos}];")
        else:
            label = f"{data['name']}\n{', '.join(data['params'])}"
            lines.append(f"  {_node_id(node)} [label={_quote(label)}, shape=box, style=filled, fillcolor=black, "
                         f"fontcolor=white, fontsize=10, {pos}];")
    for first, second in model.graph.edges():
        lines.append(f"  {_node_id(first)} -- {_node_id(second)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_png(model, path: Path) -> Path:
    """Draw the layered factor graph to a PNG file (needs matplotlib: pip install pgmdsl[plot]).

    Layers are rounded boxes holding their name, unit type and shape (observed ones grey, pooling ones
    dashed), factors black squares named to their right; drawn through the Agg canvas, never pyplot.
    """
    from .plots import _figure

    graph = model.graph
    positions = layered_positions(model)
    xs, ys = zip(*positions.values())
    figure = _figure(max(5.0, 1.6 * (max(xs) - min(xs)) + 3.0), max(3.0, 1.9 * (max(ys) - min(ys)) + 2.0))
    axes = figure.add_subplot()
    for first, second in graph.edges():
        (x0, y0), (x1, y1) = positions[first], positions[second]
        axes.plot([x0, x1], [y0, y1], color="#555555", linewidth=1.0, zorder=1)
    for node, data in graph.nodes(data=True):
        x, y = positions[node]
        if data["kind"] == "layer":
            frame = dict(boxstyle="round,pad=0.6", facecolor=_FILL[data["role"]], edgecolor="black",
                         linestyle="dashed" if data["role"] == "pooled" else "solid")
            axes.text(x, y, layer_label(data), ha="center", va="center", fontsize=8, zorder=3, bbox=frame)
        else:
            axes.scatter([x], [y], s=90, c="black", marker="s", zorder=2)
            axes.text(x + 0.12, y, data["name"], ha="left", va="center", fontsize=6, zorder=3,
                      bbox=dict(facecolor="white", edgecolor="none", pad=1.0))
    axes.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    axes.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    axes.set_title(f"factor graph of {model.name} (observed layers at the bottom)", fontsize=10)
    axes.set_axis_off()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return Path(path)

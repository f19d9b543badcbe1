"""Drawing the factor graph: Graphviz DOT always, PNG through matplotlib if installed."""

from __future__ import annotations

from pathlib import Path

_LAYER_STYLE = {
    "visible": 'shape=circle, style=filled, fillcolor="#d0d0d0"',
    "hidden": "shape=circle",
    "input": 'shape=doublecircle, style=filled, fillcolor="#f0f0f0"',
    "pooled": "shape=circle, style=dashed",
}


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _node_id(node) -> str:
    return _quote(f"{node[0]}:{node[1]}")


def to_dot(model) -> str:
    """The factor graph as a Graphviz DOT document (layers as circles, terms as squares)."""
    lines = [f"graph {_quote(model.name)} {{", "  layout=neato; overlap=false; splines=true;"]
    for node, data in model.graph.nodes(data=True):
        if data["kind"] == "layer":
            shape = "x".join(str(s) for s in data["shape"])
            label = f"{data['name']}\n{data['unit'] or 'real'} [{shape}]"
            lines.append(f"  {_node_id(node)} [label={_quote(label)}, {_LAYER_STYLE[data['role']]}];")
        else:
            label = f"{data['name']}\n{', '.join(data['params'])}"
            lines.append(f"  {_node_id(node)} [label={_quote(label)}, shape=box, style=filled, fillcolor=black, fontcolor=white, fontsize=10];")
    for first, second in model.graph.edges():
        lines.append(f"  {_node_id(first)} -- {_node_id(second)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_png(model, path: Path) -> None:
    """Draw the factor graph to a PNG file (needs matplotlib: pip install pgmdsl[plot])."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("drawing PNG needs matplotlib: pip install 'pgmdsl[plot]' (or write .dot)") from None
    import networkx as nx

    graph = model.graph
    positions = nx.spring_layout(graph, seed=0)
    figure, axes = plt.subplots(figsize=(7, 5))
    layers = [n for n, d in graph.nodes(data=True) if d["kind"] == "layer"]
    terms = [n for n, d in graph.nodes(data=True) if d["kind"] == "term"]
    colours = ["#b0b0b0" if graph.nodes[n]["role"] == "visible" else "white" for n in layers]
    nx.draw_networkx_edges(graph, positions, ax=axes, edge_color="#555555")
    nx.draw_networkx_nodes(graph, positions, nodelist=layers, node_color=colours, edgecolors="black", node_size=1400, ax=axes)
    nx.draw_networkx_nodes(graph, positions, nodelist=terms, node_color="black", node_shape="s", node_size=120, ax=axes)
    nx.draw_networkx_labels(graph, positions, labels={n: graph.nodes[n]["name"] for n in layers}, font_size=9, ax=axes)
    term_labels = {n: graph.nodes[n]["name"] for n in terms}
    offset = {n: (x, y - 0.08) for n, (x, y) in positions.items()}
    nx.draw_networkx_labels(graph, offset, labels=term_labels, font_size=7, ax=axes)
    axes.set_title(f"factor graph of {model.name}")
    axes.set_axis_off()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)

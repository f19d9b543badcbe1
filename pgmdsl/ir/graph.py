"""The factor graph of a model and the block-Gibbs schedule it implies.

The factor graph (networkx) has one node per layer and per energy term, an
edge wherever a term touches a layer, and each term's parameters as node
attributes. Layers coupled by some summand form the layer interaction graph;
a colouring of it (networkx, DSATUR: optimal on bipartite graphs) gives the
blocks that can be sampled together. Layers that couple their own units are
marked for unit-wise updates (discrete units) or a joint draw (Gaussian).
Input layers are observed and never sampled; pooling layers are a function
of their detector layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .. import units
from .interactions import couples_units, layers_in
from .model import ModelIR


@dataclass(frozen=True)
class GibbsStep:
    """Layers drawn together from their joint conditional, and how each is drawn."""

    layers: tuple[str, ...]
    updates: tuple[tuple[str, str], ...]  # layer -> block | unitwise | joint | pooled

    def update(self, layer: str) -> str:
        return dict(self.updates)[layer]

    def __str__(self) -> str:
        def label(name: str) -> str:
            mode = self.update(name)
            return name if mode == "block" else f"{name} ({mode})"

        return "{" + ", ".join(label(n) for n in self.layers) + "}"


def layer_node(name: str) -> tuple[str, str]:
    return ("layer", name)


def term_node(name: str) -> tuple[str, str]:
    return ("term", name)


def factor_graph(model: ModelIR) -> nx.Graph:
    """Layers and energy terms as nodes; edges term-layer; params on term nodes."""
    graph = nx.Graph(name=model.name)
    for layer in model.layers:
        graph.add_node(
            layer_node(layer.name), kind="layer", name=layer.name, role=layer.role,
            unit=layer.unit, shape=layer.shape,
        )
    for term in model.terms:
        params = sorted({ref.name for s in term.summands for ref in _all_refs(model, s) if ref.kind == "param"})
        graph.add_node(
            term_node(term.name), kind="term", name=term.name, params=tuple(params),
            expression=str(term), line=term.span.line,
        )
        for layer in sorted({ref.name for s in term.summands for ref in _all_refs(model, s) if ref.kind == "layer"}):
            graph.add_edge(term_node(term.name), layer_node(layer))
    return graph


def _all_refs(model: ModelIR, summand, seen: set[str] | None = None):
    """Every reference in the summand and, once each, in the lets it uses."""
    seen = set() if seen is None else seen
    for ref in summand.refs():
        yield ref
        if ref.kind == "let" and ref.name not in seen:
            seen.add(ref.name)
            for inner in model.let(ref.name).summands:
                yield from _all_refs(model, inner, seen)


def parameter_layers(model: ModelIR) -> dict[str, frozenset[str]]:
    """The sampled layers each parameter's summands touch: a bias one layer, a coupling the pair it joins.

    Why: a training recipe that treats a model as pieces (the DBM's layer-wise
    pretraining) must know which parameters belong to which layers, from the
    energy, whatever the parameters are called.
    """
    sampled = {layer.name for layer in model.layers if layer.sampled}
    found: dict[str, set[str]] = {param.name: set() for param in model.params}
    for term in model.terms:
        for summand in term.summands:
            touched = layers_in(model, summand) & sampled
            for ref in _all_refs(model, summand):
                if ref.kind == "param":
                    found[ref.name] |= touched
    return {name: frozenset(layers) for name, layers in found.items()}


def interaction_graph(model: ModelIR) -> nx.Graph:
    """Sampled layers, an edge where a summand couples two, `self_coupled` on nodes."""
    graph = nx.Graph()
    sampled = [layer.name for layer in model.layers if layer.sampled]
    for name in sampled:
        graph.add_node(name, self_coupled=False)
    for term in model.terms:
        for summand in term.summands:
            touched = sorted(layers_in(model, summand) & set(sampled))
            for i, first in enumerate(touched):
                for second in touched[i + 1:]:
                    graph.add_edge(first, second)
                if couples_units(model, summand, first):
                    graph.nodes[first]["self_coupled"] = True
    return graph


def gibbs_schedule(model: ModelIR) -> tuple[GibbsStep, ...]:
    """Blocks of conditionally independent layers, the visible layers' block first."""
    graph = interaction_graph(model)
    if graph.number_of_nodes() == 0:
        return ()
    colours = nx.coloring.greedy_color(graph, strategy="DSATUR")
    order = [layer.name for layer in model.layers if layer.sampled]
    classes: dict[int, list[str]] = {}
    for name in order:
        classes.setdefault(colours[name], []).append(name)
    visible = {layer.name for layer in model.layers if layer.role == "visible"}

    def rank(members: list[str]):
        return (not any(m in visible for m in members), min(order.index(m) for m in members))

    steps = []
    for members in sorted(classes.values(), key=rank):
        updates = tuple((name, _update(model, name, graph.nodes[name]["self_coupled"])) for name in members)
        steps.append(GibbsStep(tuple(members), updates))
    return tuple(steps)


def _update(model: ModelIR, name: str, self_coupled: bool) -> str:
    layer = model.layer(name)
    if self_coupled:
        unit = units.get(layer.unit)
        return "joint" if unit.quadratic and unit.joint else "unitwise"
    return "pooled" if layer.pooling else "block"

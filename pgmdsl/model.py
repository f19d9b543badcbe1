"""The public model object: a checked ModelIR with its factor graph and schedule."""

from __future__ import annotations

from functools import cached_property

import networkx as nx

from .ir.graph import GibbsStep, factor_graph, gibbs_schedule, interaction_graph, layer_node, term_node
from .ir.library import SourceFile
from .ir.model import EnergyTerm, Layer, Let, ModelIR, Param


class Model:
    """A model as the compiler understands it.

    `layers`, `params`, `lets` and `terms` are immutable IR objects; `graph` is
    the factor graph (networkx) and `schedule` the block-Gibbs schedule.
    A stack model (DBN) has no layers of its own: see `stack`. `files` holds
    every .dgm file the model was read from, its own first, then those it
    imports with where each import led: the cache key covers them all, and a
    checkpoint embeds them to rebuild the same model anywhere.
    """

    def __init__(self, ir: ModelIR, files: tuple[SourceFile, ...] = ()):
        self.ir = ir
        self.files = files or (SourceFile(ir.filename, ir.source),)

    @property
    def name(self) -> str:
        """The model's name, from its header."""
        return self.ir.name

    @property
    def filename(self) -> str:
        """The file it was read from (or the name given to parse)."""
        return self.ir.filename

    @property
    def source(self) -> str:
        """The .dgm text the model was read from."""
        return self.ir.source

    @property
    def sizes(self) -> dict[str, int]:
        """Every size of the header with its value (defaults and overrides applied)."""
        return dict(self.ir.sizes)

    @property
    def arguments(self) -> dict[str, int]:
        """The header's size parameters and their values (what `load(name, **sizes)` takes)."""
        return {name: value for name, value in self.ir.sizes if name in self.ir.arguments}

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The declared layers, in file order."""
        return self.ir.layers

    @property
    def params(self) -> tuple[Param, ...]:
        """The declared parameters, in file order."""
        return self.ir.params

    @property
    def lets(self) -> tuple[Let, ...]:
        """The tensor lets (named intermediate sums), in file order."""
        return self.ir.lets

    @property
    def terms(self) -> tuple[EnergyTerm, ...]:
        """The energy's named terms (names given, or made from the parameters and layers)."""
        return self.ir.terms

    def layer(self, name: str) -> Layer:
        """The layer called `name` (KeyError if there is none)."""
        return self.ir.layer(name)

    def param(self, name: str) -> Param:
        """The parameter called `name` (KeyError if there is none)."""
        return self.ir.param(name)

    @cached_property
    def stack(self) -> tuple["Model", ...]:
        """The stacked models, bottom first (empty unless this is a stack)."""
        return tuple(Model(entry.model, self.files) for entry in self.ir.stack)

    @cached_property
    def graph(self) -> nx.Graph:
        """The factor graph: ("layer", name) and ("term", name) nodes."""
        if self.stack:
            return _stack_graph(self.stack)
        return factor_graph(self.ir)

    @cached_property
    def interactions(self) -> nx.Graph:
        """The layer interaction graph the schedule colours."""
        return interaction_graph(self.ir)

    @cached_property
    def schedule(self) -> tuple[GibbsStep, ...]:
        """Block-Gibbs steps in order; empty for a stack (trained model by model)."""
        return () if self.stack else gibbs_schedule(self.ir)

    def compile(self, backend: str = "numpy", dtype: str = "float32", seed: int = 0, cache: bool = True):
        """Derive and generate the model's module; returns a Compiled (see pgmdsl.runtime.compiled)."""
        from .compiler import compile_model

        return compile_model(self, backend, dtype, seed, cache)

    def summary(self) -> str:
        """A text summary: sizes, layers, parameters, terms and the Gibbs schedule (what `pgmdsl check` prints)."""
        from .summary import summary

        return summary(self)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.ir.sizes)
        return f"<Model {self.name}({sizes})>"


def _stack_graph(entries: tuple[Model, ...]) -> nx.Graph:
    """A DBN's graph: level layers v, h1, h2...; all but the top pair directed. A pooled level's detectors are
    d1, d2...: its pooling layer is the level (convolutional DBN)."""
    graph = nx.Graph()
    levels = [entries[0].ir.layers[0].name] + [f"h{k + 1}" for k in range(len(entries))]
    for k, entry in enumerate(entries):
        renames = {}
        for layer in entry.layers:
            level = levels[k] if layer.role == "visible" else f"d{k + 1}" if layer.pooling else levels[k + 1]
            renames[layer.name] = level
            role = "visible" if level == levels[0] else "pooled" if layer.role == "pooled" else "hidden"
            if layer_node(level) not in graph:  # the layer two levels meet at is added by the lower one
                graph.add_node(layer_node(level), kind="layer", name=level, role=role, unit=layer.unit,
                               shape=layer.shape)
        directed = k < len(entries) - 1
        for layer in entry.layers:
            if layer.pooling:  # the pooling constraint as a factor: p is the OR of each block of the detectors
                name = f"{entry.name}{k + 1}.pooling"
                graph.add_node(term_node(name), kind="term", name=name, params=(), line=layer.span.line,
                               expression=f"{layer.pooling.into} = max of {layer.name}'s blocks", directed=False)
                graph.add_edge(term_node(name), layer_node(renames[layer.name]))
                graph.add_edge(term_node(name), layer_node(renames[layer.pooling.into]))
        for node, data in entry.graph.nodes(data=True):
            if data["kind"] != "term":
                continue
            name = f"{entry.name}{k + 1}.{data['name']}"
            graph.add_node(term_node(name), **{**data, "name": name, "directed": directed})
            for neighbour in entry.graph.neighbors(node):
                graph.add_edge(term_node(name), layer_node(renames[neighbour[1]]))
    return graph

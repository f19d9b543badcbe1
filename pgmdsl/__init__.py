"""pgmdsl: a language and compiler for energy-based graphical models.

Write a model as its energy in index notation (a .dgm file); the compiler
derives the factor graph, the Gibbs schedule, conditionals, free energies and
gradients.
"""

from .errors import DSLError
from .loading import load, parse
from .model import Model

__version__ = "0.1.0"

__all__ = ["DSLError", "Model", "load", "parse", "__version__"]

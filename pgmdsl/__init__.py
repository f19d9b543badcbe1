"""pgmdsl: a language and compiler for energy-based graphical models.

Write a model as its energy in index notation (a .dgm file); the compiler
derives the factor graph, the Gibbs schedule, conditionals, free energies and
gradients.
"""

__version__ = "0.1.0"  # before the imports: runtime.checkpoint reads it while pgmdsl is being imported

from .errors import DSLError
from .loading import load, parse
from .model import Model
from .runtime import datasets
from .runtime.checkpoint import load_trained
from .runtime.compiled import Compiled
from .runtime.stack import CompiledStack
from .runtime.train import History, StopTraining

__all__ = ["Compiled", "CompiledStack", "DSLError", "History", "Model", "StopTraining", "datasets", "load",
           "load_trained", "parse", "__version__"]

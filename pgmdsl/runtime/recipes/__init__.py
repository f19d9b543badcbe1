"""Training recipes: the defaults `pgmdsl train` takes for the options a user did not give, chosen by structure.

Why one place: the right defaults differ by kind of model (binary units
train well by PCD-1 at 0.05; a sequence model wants small rates and
momentum), and a default that lives in argparse, in the run code and in the
README drifts apart. A recipe is picked from the model's layers, never from
its name, so a user's own .dgm gets the same defaults as the library's
model of that shape; every option given on the command line overrides its
recipe value, and the start-up line names the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ... import units
from ...errors import DSLError
from ..sequences import sequence_structure
from . import dbm

# --lr when none is given. Binary and other bounded units train well at 0.05. Units with a quadratic energy
# (Gaussian-like) diverge there: gbrbm by PCD-1 (batch 10) on standardised digits diverges at 0.05 and 0.02, and
# at 0.01 some seeds blow a variance up to exp(27); at 0.005 it trained with 16 to 1000 hidden units for 20 to 100
# epochs, every seed tried (raw digits too up to 400 hidden units), with the best held-out log-likelihood of
# the rates tried (0.002 to 0.02, and 0.01 with a tenth of it for log_sigma).
DEFAULT_LR = 0.05
REAL_VALUED_LR = 0.005

# The sequence recipe's rates: a CRBM (models/crbm.dgm) on standardised oscillators (pgmdsl.datasets.oscillators)
# by CD-1, batch 100, momentum 0.9, learnt the motion in 60 to 100 epochs at 0.01 for every parameter and a tenth
# of it for the log standard deviations (which move every unit's scale at once; faster, they blow up).
SEQUENCE_LR = 0.01
SLOWER_LR = {"log_sigma": 0.001}  # by parameter name: the standard library's log standard deviations


@dataclass(frozen=True)
class Recipe:
    """A named way to train: default options (`training`, lr resolved per model), evaluation options, and what
    runs around fit().

    applies: whether the recipe is the default for a model (by structure); the first that applies is chosen,
    and `--recipe NAME` picks any that accepts the model. options: the fit() defaults for a model (None:
    `training` with the default lr). before: run before fit() on a fresh start (the DBM's pretraining), as
    before(compiled, rows, seed, **options) giving its histories. arguments: fit()'s extra arguments for a model (the
    DBM's mean-field start). after: run after training (a stack's up-down fine-tuning), as
    after(trained, rows, seed, **options) giving its history. refuses: why the recipe cannot train a model (None: it can). stack: the recipe
    trains a stack (runtime.recipes.greedy), not one model.
    """

    name: str
    why: str
    training: dict
    evaluation: dict = field(default_factory=dict)
    applies: Callable = field(default=lambda model: False, compare=False)
    refuses: Callable = field(default=lambda model: None, compare=False)
    options: Callable | None = field(default=None, compare=False)
    before: Callable | None = field(default=None, compare=False)
    arguments: Callable = field(default=lambda compiled: {}, compare=False)
    after: Callable | None = field(default=None, compare=False)
    stack: bool = False

    def defaults(self, model) -> dict:
        """The recipe's training options for `model`, lr included (a number, or one rate per parameter)."""
        if self.options is not None:
            return self.options(model)
        return {**self.training, "lr": _lr(self.name, model)}

    def accepts(self, model) -> str | None:
        """None if the recipe can train `model`, else why not (one line)."""
        if self.stack != bool(model.stack):
            return f"recipe '{self.name}' trains {'stacks' if self.stack else 'one model, not a stack'}"
        return self.refuses(model)


def _not_a_dbm(model) -> str | None:
    """Why the DBM recipe cannot train `model` (None: it can)."""
    try:
        dbm.chain(model)
    except DSLError as error:
        return error.message
    return None


def _pretrain(compiled, rows, seed: int, **options):
    return dbm.pretrain(compiled, rows, seed=seed, **options)


def _mean_field_start(compiled) -> dict:
    return {"mean_field_start": dbm.mean_field_start(dbm.chain(compiled.model))}


# Lee, Grosse, Ranganath and Ng (2009) train convolutional RBMs by CD-1 with a sparsity penalty pulling the
# detector units' mean activation to a small target (Lee, Ekanadham and Ng 2008). Measured on binarised 8x8 digits
# (bench/conv_sparsity.py: conv_rbm with 24 filters 3x3, pool 2, CD-1, 20 epochs, held-out log p(v) by AIS), a
# target of 0.02 at cost 1 gave -28.39 nats, 0.05 -28.52, 0.1 -30.82 and none -30.00 (bench/README.md).
SPARSITY = {"sparsity_target": 0.02, "sparsity_cost": 1.0}
CONVOLUTIONAL = Recipe("convolutional", "Lee et al.'s for convolutional RBMs with probabilistic max pooling (CD-1, "
                       "a sparsity target of 0.02 for the detector units)",
                       {"method": "cd", "k": 1, "epochs": 20, "batch_size": 10, "momentum": 0.0, **SPARSITY},
                       applies=lambda model: not model.stack and any(l.role == "pooled" for l in model.layers))
DEFAULT = Recipe("default", "the defaults for models without input layers",
                 {"method": "pcd", "k": 1, "epochs": 20, "batch_size": 10, "momentum": 0.0},
                 applies=lambda model: not model.stack)
SEQUENCE = Recipe("sequence", "for sequence models (an input layer of past frames beside the frame layer)",
                  {"method": "cd", "k": 1, "epochs": 60, "batch_size": 100, "momentum": 0.9},
                  {"ais_distributions": 1000},  # AIS per input row runs rows x runs chains: 14,500 steps take long
                  applies=lambda model: not model.stack and sequence_structure(model) is not None)
DBM = Recipe("dbm", "Salakhutdinov and Hinton's for deep Boltzmann machines (layer-wise pretraining with doubled "
             "inputs, then mean-field and persistent chains)", dbm.JOINT, applies=lambda model: _not_a_dbm(model) is None,
             refuses=_not_a_dbm, options=lambda model: dbm.joint_options(model, {}), before=_pretrain, arguments=_mean_field_start)
JOINT = Recipe("joint", "the DBM recipe's joint training from the initial parameters, without pretraining",
               dbm.JOINT, refuses=_not_a_dbm, options=lambda model: dbm.joint_options(model, {}),
               arguments=_mean_field_start)
GREEDY = Recipe("greedy", "Hinton, Osindero and Teh's greedy layer-wise training of a stack",
                {"method": "pcd", "k": 1, "epochs": 20, "batch_size": 10, "momentum": 0.0},
                applies=lambda model: bool(model.stack), stack=True)
UPDOWN = Recipe("updown", "the greedy recipe, then Hinton, Osindero and Teh's up-down fine-tuning",
                GREEDY.training, stack=True,
                after=lambda stack, rows, seed, **options: stack.fine_tune(rows, seed=seed, **options))
# The order is the choice: the first that applies is a model's default.
RECIPES = {recipe.name: recipe for recipe in (GREEDY, SEQUENCE, DBM, CONVOLUTIONAL, DEFAULT, JOINT, UPDOWN)}


def choose(model, name: str | None = None) -> Recipe:
    """The recipe for `model` (a Model or Compiled): `name` if given (checked), else the first that applies."""
    model = getattr(model, "model", model)  # a Compiled's Model
    if name is not None:
        if name not in RECIPES:
            raise DSLError(f"--recipe {name}: no such recipe (recipes: {', '.join(RECIPES)})")
        why = RECIPES[name].accepts(model)
        if why is not None:
            raise DSLError(f"--recipe {name}: {why}")
        return RECIPES[name]
    return next(recipe for recipe in RECIPES.values() if recipe.applies(model))


def fill(model, given: dict, name: str | None = None) -> tuple[dict, Recipe, tuple[str, ...]]:
    """(options, recipe, the names it filled): `given` with each None replaced by the recipe's value for `model`,
    and the recipe's other options (the DBM's chains, schedule, sparsity) added where `given` has no key.

    Keys the recipe does not know (seed, weight decay, ...) pass unchanged.
    """
    recipe = choose(model, name)
    defaults = recipe.defaults(model)
    filled = tuple(name for name, value in given.items() if value is None and name in defaults)
    options = {name: defaults[name] if name in filled else value for name, value in given.items()}
    return {**{k: v for k, v in defaults.items() if k not in given}, **options}, recipe, filled


def evaluation_default(model, name: str, given):
    """An evaluation option (ais_distributions, ...) as given, or the recipe's default for it when None."""
    return given if given is not None else choose(model).evaluation.get(name)


def default_lr(model) -> float:
    """The default recipe's learning rate: REAL_VALUED_LR if an observed layer's energy is quadratic."""
    quadratic = any(layer.role in ("visible", "input") and layer.unit is not None and units.get(layer.unit).quadratic
                    for layer in model.layers)
    return REAL_VALUED_LR if quadratic else DEFAULT_LR


def _lr(recipe: str, model):
    """The recipe's rate for `model`: the sequence recipe's is per parameter (SEQUENCE_LR, SLOWER_LR by name)."""
    if recipe == SEQUENCE.name:
        return {param.name: SLOWER_LR.get(param.name, SEQUENCE_LR) for param in model.params}
    return default_lr(model)

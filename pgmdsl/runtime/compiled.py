"""Compiled: a model's generated module with its parameters, behind a small API.

States are dicts from layer name to an array with the batch axis first.
The runtime never sees sympy: only the generated module's functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DSLError
from .initialize import check_parameters, check_rows, constrain, initial_value


class Compiled:
    """A compiled model: `params`, `source`, and energy, free energy, conditionals and gradients."""

    def __init__(self, model, module, source: str, backend: str, dtype: str, seed: int = 0):
        self.model = model
        self.module = module
        self.source = source
        self.backend = backend
        self.dtype = np.dtype(dtype)
        self.xp = module.xp
        check_parameters(model, self.dtype)
        rng = np.random.default_rng(seed)
        self.params = {p.name: self.xp.asarray(initial_value(p, rng, self.dtype)) for p in model.params}
        # the per-unit standardisation its real-valued rows were trained in (runtime.standardize), if any:
        # saved with the model, applied to data by `pgmdsl eval` and undone for samples
        self.standardization = None
        # whether the parameters were trained (or loaded trained): data-dependent initialisers (logit_mean) then
        # stay as they are, so a second fit() continues from the first instead of resetting those parameters
        self.trained = False

    # ---- structure ----
    @property
    def layers(self) -> dict:
        """Each layer's shape, unit type, role (visible, hidden, input, pooled) and update (block, unitwise, ...)."""
        return self.module.LAYERS

    @property
    def kept(self) -> tuple[str, ...]:
        """Layers free_energy takes; the others (`marginalised`) are summed out analytically."""
        return self.module.KEPT

    @property
    def marginalised(self) -> tuple[str, ...]:
        """Layers the free energy sums out analytically (the rest are `kept`)."""
        return self.module.MARGINALISED

    @property
    def schedule(self) -> tuple[tuple[str, ...], ...]:
        """The block-Gibbs sweep: groups of layers sampled together, in order."""
        return self.module.SCHEDULE

    @property
    def sampled(self) -> tuple[str, ...]:
        """Every layer the Gibbs sweep samples, in sweep order."""
        return tuple(name for step in self.schedule for name in step)

    # ---- states ----
    def _state(self, state: dict, needed) -> dict:
        converted = {}
        for name, value in state.items():
            if name not in self.layers:
                raise DSLError(f"model {self.model.name} has no layer '{name}' (layers: {', '.join(self.layers)})")
            array = self.xp.asarray(value, dtype=self.dtype)
            if array.ndim == len(self.layers[name]["shape"]):
                array = array[None]
            if tuple(array.shape[1:]) != tuple(self.layers[name]["shape"]):
                raise DSLError(
                    f"layer '{name}' has shape {self.layers[name]['shape']} per row, got an array of shape {tuple(array.shape)}"
                )
            converted[name] = array
        missing = [n for n in needed if n not in converted]
        if missing:
            raise DSLError(f"the state lacks layer{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        return converted

    def _layer(self, layer: str) -> None:
        if layer not in self.sampled:
            raise DSLError(f"'{layer}' is not a sampled layer of {self.model.name} (sampled: {', '.join(self.sampled)})")

    # ---- the kernels ----
    def energy(self, state: dict):
        """E(state), one value per batch row; every non-pooled layer must be given."""
        needed = [n for n, info in self.layers.items() if info["role"] != "pooled"]
        return self.module.energy(self.params, self._state(state, needed))

    def free_energy(self, state: dict, beta=1.0, summed: tuple[str, ...] | None = None):
        """F over the kept layers: -log of exp(-beta E) summed over the `summed` layers.

        summed: a colour class of layers to sum out (see `free_energies`); the default
        is `marginalised`. beta may be an array: one row of free energies per value.
        """
        kept, function = self.free_energies[self.marginalised if summed is None else tuple(summed)]
        return getattr(self.module, function)(self.params, self._state(state, kept), beta)

    @property
    def free_energies(self) -> dict:
        """{summed layers: (kept layers, generated function)} for every class that sums out analytically."""
        return {tuple(k): (tuple(kept), name) for k, (kept, name) in self.module.FREE_ENERGIES.items()}

    def mean(self, layer: str, state: dict):
        """E[layer | the other layers]: conditional probabilities or means."""
        self._layer(layer)
        return getattr(self.module, f"mean_{layer}")(self.params, self._state(state, self._others(layer)))

    def sample_layer(self, layer: str, state: dict, rng):
        """A draw of `layer` from its conditional given the others (a sweep for coupled units)."""
        self._layer(layer)
        return getattr(self.module, f"sample_{layer}")(self.params, self._state(state, self._others(layer)), rng)

    def _others(self, layer: str) -> list[str]:
        needed = [n for n, info in self.layers.items() if info["role"] != "pooled" and n != layer]
        if self.layers[layer]["update"] == "unitwise":
            needed.append(layer)
        return needed

    def statistics(self, state: dict, weights=None) -> dict:
        """Weighted batch sums of -dE/dtheta, with summed-out layers at their conditional means."""
        state = self._state(state, self.kept)
        for name in self.marginalised:
            if name not in state:
                state[name] = getattr(self.module, f"mean_{name}")(self.params, state)
        missing = [n for n, info in self.layers.items() if info["role"] != "pooled" and n not in state]
        if missing:
            raise DSLError(f"the state lacks layer{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        rows = len(next(iter(state.values())))
        if weights is None:
            weights = self.xp.full(rows, 1.0 / rows, dtype=self.dtype)
        else:
            weights = self.xp.asarray(weights, dtype=self.dtype)
            weights = weights / weights.sum()
        return self.module.statistics(self.params, state, weights)

    def gradient(self, data_state: dict, model_state: dict, data_weights=None, model_weights=None) -> dict:
        """d log-likelihood / d theta: data statistics minus model statistics (weighted means).

        Layers missing from a state that the model sums out are replaced by their
        conditional means; constraints (symmetric, zero_diagonal) shape the result.
        """
        data = self.statistics(data_state, data_weights)
        model = self.statistics(model_state, model_weights)
        gradient = {}
        for param in self.model.params:
            difference = self.xp.asarray(data[param.name] - model[param.name], dtype=self.dtype)
            gradient[param.name] = constrain(param, self.xp.broadcast_to(difference, param.shape), self.xp)
        return gradient

    def random(self, seed: int = 0):
        """A random generator for this backend's samplers (numpy's, or cupy's on the GPU)."""
        return self.xp.random.default_rng(seed)

    # ---- fast paths for the runtime (no checks) ----
    def module_mean(self, layer: str, state: dict):
        """E[layer | rest] from the generated module, without the checks of `mean` (the runtime's fast path)."""
        return getattr(self.module, f"mean_{layer}")(self.params, state)

    def module_sample(self, layer: str, state: dict, rng):
        """A draw of `layer` given the rest, without the checks of `sample_layer` (the runtime's fast path)."""
        return getattr(self.module, f"sample_{layer}")(self.params, state, rng)

    # ---- training, sampling, saving ----
    def fit(self, data, method: str = "cd", k: int = 1, epochs: int = 10, batch_size: int = 10, lr: float = 0.05,
            momentum: float = 0.0, weight_decay: float = 0.0, seed: int = 0, callbacks=(), clamp=(),
            validation=None, checkpoint=None, resume=None, monitor=(), check_data=True, mean_field_start=None,
            client=None, *, lr_schedule: str = "constant", lr_decay: float = 0.0, lr_min: float = 0.0,
            initial_momentum: float | None = None, momentum_epochs: int = 5, sparsity_target=None,
            sparsity_cost: float = 0.0, sparsity_decay: float = 0.9, chains: int | None = None,
            mean_field_steps: int = 10, checkpoint_every: int = 1, verbose: int = 1, fused: bool = True,
            objective: str = "generative", labels: str | None = None, generative_weight: float = 0.01,
            temperatures=None, hmc: bool | dict = False, **options):
        """Train by CD-k, PCD-k or parallel tempering (or on log p(labels | rest): objective=, labels=); returns
        the per-epoch History.

        method: a sampler of runtime.samplers: "cd", "pcd", or "pt" (persistent chains at each of
        temperatures= inverse temperatures, default 10 geometric from 1 to 0.1, exchanged between neighbours;
        the History reports swap_rate, and swap_rate_t per pair). chains= sets the persistent chains (per
        temperature for pt; default batch_size).

        data: an array for the one observed layer, or a dict of arrays for several
        (visible and input layers). validation: held-out data for the free-energy
        gap. checkpoint: a .npz path written every `checkpoint_every` epochs;
        resume: a checkpoint to continue from exactly. monitor: evaluation metrics per
        epoch, functions of (compiled, rows) such as pgmdsl.evaluate.pseudo_log_likelihood and
        exact_log_likelihood (small models), or {name: function}. callbacks: functions of (compiled, row) called
        after each epoch with its History row; one that returns False or raises pgmdsl.StopTraining ends training
        after that epoch (early stopping): its row is kept, its checkpoint written (resume= continues from it), and
        fit returns the History as usual. Other options (lr_schedule,
        sparsity_target, chains, verbose, fused, ...) are listed in runtime.options. labels: a discrete visible
        layer; its exact accuracy and log p(labels | rest) join the History every epoch, and objective=
        "discriminative" climbs that log-likelihood (its exact gradient), "hybrid" adds generative_weight times
        the CD/PCD step. Models that pack (runtime.packing: biases and visible-hidden couplings only; binary,
        spin or one-hot units), trained generatively without sparsity or clamps, take the packed update of
        runtime.fused unless fused=False; both make the same draws and agree to rounding. No minibatch is larger
        than the rows, whatever batch_size says (PCD still keeps batch_size chains unless chains= is given); states
        past the memory budget are refused before they are allocated (runtime.initialize). check_data: refuse data outside each unit type's support (binary units
        in [0, 1], ...: units.UnitType.check_data); scikit-learn's wrappers, like BernoulliRBM, take any features.
        mean_field_start: a function of (compiled, minibatch) giving the latent layers' means the mean-field
        data phase starts from (the DBM recipe's doubled bottom-up pass, runtime.recipes.dbm); default 0.5 each.
        hmc: draw jointly drawn Gaussian layers (an mcRBM's x) by hybrid Monte Carlo instead of exactly (True, or
        {"steps": 20, "step_size": 0.05, "target": 0.9}: runtime.hmc): O(nv) per unit and leapfrog step where the
        exact draw factors an nv x nv precision per chain; the History reports its acceptance and step size.
        client: a dask.distributed Client: synchronous data-parallel training, the rows sharded over its workers
        (pgmdsl.distributed.fit_data_parallel; needs pip install 'pgmdsl[dask]').
        The keyword-only options are runtime.options.TrainingOptions' (the same defaults, checked there); a
        name that is none of them is a DSLError listing them.
        """
        options = {**_changed(lr_schedule=lr_schedule, lr_decay=lr_decay, lr_min=lr_min,
                              initial_momentum=initial_momentum, momentum_epochs=momentum_epochs,
                              sparsity_target=sparsity_target, sparsity_cost=sparsity_cost,
                              sparsity_decay=sparsity_decay, chains=chains, mean_field_steps=mean_field_steps,
                              checkpoint_every=checkpoint_every, verbose=verbose, fused=fused, objective=objective,
                              labels=labels, generative_weight=generative_weight, temperatures=temperatures,
                              hmc=hmc),
                   **options}
        if client is not None:
            from ..distributed import fit_data_parallel

            self.history = fit_data_parallel(
                self, data, client, method=method, k=k, epochs=epochs, batch_size=batch_size, lr=lr,
                momentum=momentum, weight_decay=weight_decay, seed=seed, callbacks=callbacks, clamp=clamp,
                validation=validation, checkpoint=checkpoint, resume=resume, monitor=monitor, check_data=check_data,
                mean_field_start=mean_field_start, **options)
            return self.history
        from .train import Trainer, check_support

        trainer = Trainer(self, data, clamp=clamp, callbacks=callbacks, validation=validation,
                          checkpoint=checkpoint or resume, monitor=monitor, mean_field_start=mean_field_start,
                          method=method, k=k, epochs=epochs,
                          batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
                          seed=seed, **options)
        if check_data:
            for rows in (trainer.data, trainer.validation or {}):
                check_support(self, rows)
        if resume is not None and Path(resume).exists():
            trainer.resume(resume)
        else:
            trainer.start()
        self.history = trainer.run()
        self.trained = True
        return self.history

    def sample(self, n: int, steps: int = 1000, clamp: dict | None = None, init: dict | None = None, seed: int = 0,
               method: str = "gibbs", temperatures=None, hmc: bool | dict = False) -> dict:
        """n chains of `steps` Gibbs sweeps; `clamp` fixes layers (or inputs) to given arrays (inpainting
        fixes units by clamping a layer and restoring the free units yourself: see `inpaint`).

        method="pt": parallel tempering (runtime.samplers.pt): each step is a sweep of every chain at every
        inverse temperature of the ladder (temperatures=: a count, default 10, geometric from 1 to 0.1, or the
        values, 1.0 among them) and exchanges between neighbours; the chains at inverse temperature 1 are
        returned. It crosses between modes that plain Gibbs sampling visits rarely.

        Pooling layers come back with their detectors: each pooling unit the OR of its block. hmc: jointly drawn
        Gaussian layers by hybrid Monte Carlo transitions (runtime.hmc; True or its settings), as fit's hmc=."""
        from . import samplers
        from .pools import with_pools
        from .sampling import gibbs, initial_state

        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise DSLError(f"sample: n must be a positive integer, got {n!r}")
        if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
            raise DSLError(f"sample: steps must be an integer >= 0, got {steps!r}")
        check_rows(self, n, f"{n} samples of {self.model.name}")
        rng = self.random(seed)
        clamp = {k: self._rows(k, v, n) for k, v in (clamp or {}).items()}
        init = {k: self._rows(k, v, n) for k, v in (init or {}).items()}
        if method != "gibbs":
            settings = {} if temperatures is None else {"temperatures": temperatures}
            if hmc is not False:
                settings["hmc"] = hmc
            return with_pools(self, samplers.run(self, method, int(n), int(steps), rng, {**init, **clamp},
                                                 tuple(clamp), **settings))
        if temperatures is not None:
            raise DSLError("sample: temperatures= is for method='pt', not method='gibbs'")
        from .hmc import transitions
        from .options import options

        try:
            options(hmc=hmc)  # checked as fit checks it
        except DSLError as error:
            raise DSLError(f"sample: {error.message.removeprefix('fit: ')}") from None
        state = initial_state(self, n, rng, {**init, **clamp})
        return with_pools(self, gibbs(self, state, rng, steps, clamped=tuple(clamp),
                                      transitions=transitions(self, hmc)))

    def inpaint(self, layer: str, values, known, steps: int = 200, seed: int = 0):
        """Sample the unknown units of `layer` given the known ones (`known`: boolean mask like values)."""
        from .sampling import initial_state, sweep_order

        rng = self.random(seed)
        values = self._state({layer: values}, [layer])[layer]
        known = self.xp.asarray(np.broadcast_to(np.asarray(known, bool), values.shape))
        state = initial_state(self, len(values), rng, {layer: values})
        for _ in range(steps):
            for name in sweep_order(self):
                state[name] = self.module_sample(name, state, rng)
                if name == layer:
                    state[name] = self.xp.where(known, values, state[name])
        return state[layer]

    def windows(self, sequences) -> dict:
        """(past, frame) training windows of a sequence model from one sequence (T, ...), several (S, T, ...)
        or a list of sequences of any lengths (runtime.sequences)."""
        from .sequences import windows

        return windows(self, sequences)

    def generate(self, n_frames: int, seed_frames, gibbs_steps: int = 30, mean_field: bool = True, seed: int = 0):
        """n_frames new frames after seed_frames, each fed back as the newest past frame (Taylor et al.'s
        generation: alternating Gibbs with the past clamped, the visible mean as the frame unless mean_field=False)."""
        from .sequences import generate

        return generate(self, n_frames, seed_frames, gibbs_steps=gibbs_steps, mean_field=mean_field, seed=seed)

    def _rows(self, layer: str, value, n: int):
        """A layer's values for n chains: one row is repeated, n rows are taken as they are."""
        if layer not in self.layers:
            raise DSLError(f"model {self.model.name} has no layer '{layer}'")
        array = self.xp.asarray(value, dtype=self.dtype)
        shape = tuple(self.layers[layer]["shape"])
        if array.shape == shape:
            return self.xp.broadcast_to(array, (n,) + shape).copy()
        if array.shape != (n,) + shape:
            raise DSLError(f"layer '{layer}' needs shape {shape} or {(n,) + shape}, got {tuple(array.shape)}")
        return array

    def transform(self, data):
        """Hidden conditional means given observed data (the features of an RBM); a dict of them for several
        layers. Pooling layers are among them: P(p = 1 | data), the sum of the block's means."""
        from .pools import with_pools
        from .train import _Inference, as_data

        hidden = _Inference(self, {k: self.xp.asarray(v) for k, v in as_data(self, data).items()}).latent_means()
        hidden = with_pools(self, hidden)
        return next(iter(hidden.values())) if len(hidden) == 1 else hidden

    def reconstruct(self, data):
        """Observed -> hidden means -> visible means."""
        from .train import as_data, reconstruct

        result = reconstruct(self, as_data(self, data))
        return next(iter(result.values())) if len(result) == 1 else result

    def save(self, path) -> Path:
        """Parameters, .dgm source, sizes, dtype and compiler version in one .npz (no pickle)."""
        from .checkpoint import save

        return save(path, self)

    def __repr__(self) -> str:
        return f"<Compiled {self.model.name} backend={self.backend} dtype={self.dtype}>"


def _changed(**given) -> dict:
    """The options that differ from TrainingOptions' defaults: what fit passes on (the data-parallel trainer refuses
    options it does not support only when they are given)."""
    from dataclasses import fields

    from .options import TrainingOptions

    defaults = {field.name: field.default for field in fields(TrainingOptions)}
    return {name: value for name, value in given.items() if not (name in defaults and value == defaults[name]
                                                                  and type(value) is type(defaults[name]))}

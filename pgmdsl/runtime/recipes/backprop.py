"""Discriminative fine-tuning of a deep belief network by backpropagation.

Hinton, Osindero and Teh (2006) and Hinton and Salakhutdinov (2006): after
greedy pretraining, the stack's up pass is unrolled into a feed-forward
network (each level's recognition map v -> E[h | v] becomes a layer), a
softmax output layer is put on top, and the whole network is trained on
labelled rows by gradient descent on the cross-entropy. The pretrained
weights are the starting point; backpropagation only adjusts them.

The layers are read from each level's *compiled* conditional, not from
parameter names: for a level whose hidden field is affine in its visible
units, field(v) = v @ W + b, the generated `field_<hidden>` gives b at v = 0
and W's rows at the unit vectors. That holds for any .dgm model of that
shape (whatever its parameters are called or however its energy is
written), and `unroll` checks it at a random point instead of assuming it.
The activation is the mean of the hidden units given their field; for
units with values {0, 1} that is the logistic function, the only case this
recipe differentiates, so other unit types are refused.
"""

from __future__ import annotations

import numpy as np

from ... import units
from ...errors import DSLError
from ..gpu import to_host
from ..stack import single
from ..train import TrainingDiverged


def unroll(levels) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each level's up pass as an affine map: (weights, biases), float64 host arrays, bottom level first.

    Level k's map is sigmoid(x @ weights[k] + biases[k]) on its visible rows x (flattened), which is its
    hidden conditional mean. A DSLError if a level's hidden units are not {0, 1} units updated as one
    block, if its hidden field is not affine in its visible units, or if its visible width is not the hidden
    width of the level below.
    """
    weights, biases = [], []
    for number, level in enumerate(levels):
        visible, hidden = single(level, "visible"), single(level, "hidden")
        info = level.layers[hidden]
        unit = units.get(info["unit"])
        if unit is None or unit.values != (0, 1):
            raise DSLError(f"level {number} ({level.model.name}): hidden layer '{hidden}' has {info['unit']} units; "
                           "backpropagation fine-tuning needs units with values {0, 1} (a logistic activation)")
        if info["update"] != "block":
            raise DSLError(f"level {number} ({level.model.name}): the units of hidden layer '{hidden}' are coupled "
                           "to each other, so its up pass is not one feed-forward layer")
        width = int(np.prod(level.layers[visible]["shape"]))
        if biases and width != len(biases[-1]):
            raise DSLError(f"level {number} ({level.model.name}): visible layer '{visible}' has {width} units but "
                           f"the level below has {len(biases[-1])} hidden units")
        # the field at v = 0, then at every unit vector, in one call
        probes = _field(level, visible, hidden, np.concatenate([np.zeros((1, width)), np.eye(width)]))
        bias = probes[0].copy()
        weight = probes[1:] - bias
        point = np.random.default_rng(number).random((1, width))
        actual, affine = _field(level, visible, hidden, point)[0], (point @ weight)[0] + bias
        # rounding of the level's dtype, bounded by the size of the terms summed (not of their possibly small sum)
        scale = (np.abs(point) @ np.abs(weight))[0] + np.abs(bias) + np.finfo(np.float64).tiny
        tolerance = max(1e-8, 64 * width * float(np.finfo(level.dtype).eps))
        if not np.all(np.abs(actual - affine) <= tolerance * scale):
            worst = float(np.max(np.abs(actual - affine) / scale))
            raise DSLError(f"level {number} ({level.model.name}): the field of hidden layer '{hidden}' is not affine "
                           f"in visible layer '{visible}' (off by {worst:.2g} relative at a random point), so its up "
                           "pass is not one feed-forward layer")
        weights.append(weight)
        biases.append(bias)
    return weights, biases


def _field(level, visible: str, hidden: str, rows) -> np.ndarray:
    """The level's generated field of `hidden` given flat visible `rows`: (rows, hidden units), float64 on the host."""
    shape, outputs = tuple(level.layers[visible]["shape"]), int(np.prod(level.layers[hidden]["shape"]))
    value = getattr(level.module, f"field_{hidden}")(
        level.params, {visible: level.xp.asarray(rows.reshape((-1,) + shape), dtype=level.dtype)})
    # a field without a visible term has no rows axis: broadcast it to one row per input
    return np.broadcast_to(np.asarray(to_host(value), dtype=np.float64).reshape(-1, outputs), (len(rows), outputs))


class Network:
    """A feed-forward network of logistic hidden layers and a softmax output, trained by minibatch SGD.

    State, all explicit and plain: `weights` and `biases` (one pair per layer, the output layer last),
    `velocities` (the momentum of each, weights then biases), `rng` (draws minibatch orders). The output
    layer starts at normal(0, 0.01) weights and zero biases: small, so the pretrained features decide the
    first gradients rather than a random projection of them.
    """

    def __init__(self, weights, biases, n_classes: int, rng):
        if not biases:
            raise DSLError("a network needs at least one hidden layer")
        self.rng = rng
        self.weights = [np.array(w, dtype=np.float64) for w in weights] + [rng.normal(0, 0.01, (len(biases[-1]), n_classes))]
        self.biases = [np.array(b, dtype=np.float64) for b in biases] + [np.zeros(n_classes)]
        self.velocities = [np.zeros_like(p) for p in self.weights + self.biases]

    def forward(self, X) -> list[np.ndarray]:
        """The activations of every layer on rows X: [X, hidden 1, ..., hidden L, output logits]."""
        activations = [np.asarray(X, dtype=np.float64)]
        for weight, bias in zip(self.weights[:-1], self.biases[:-1]):
            activations.append(_logistic(activations[-1] @ weight + bias))
        activations.append(activations[-1] @ self.weights[-1] + self.biases[-1])
        return activations

    def predict_log_proba(self, X) -> np.ndarray:
        """log p(class | x) per row, from a log-softmax stable for any logits."""
        return _log_softmax(self.forward(X)[-1])

    def predict_proba(self, X) -> np.ndarray:
        """p(class | x) per row: the softmax of the output layer."""
        return np.exp(self.predict_log_proba(X))

    def loss(self, X, y, weight_decay: float = 0.0) -> float:
        """Mean cross-entropy of classes y (integers 0..n_classes-1) plus weight_decay / 2 times the squared
        weights (matrices only: biases are not decayed), what `train` descends."""
        log_p = self.predict_log_proba(X)
        return float(-np.mean(log_p[np.arange(len(y)), y])) + self._penalty(weight_decay)

    def gradients(self, X, y, weight_decay: float = 0.0, frozen: int = 0):
        """(loss, weight gradients, bias gradients) of `loss` by backpropagation.

        frozen: how many bottom layers are held fixed; their gradients are None and not computed.
        """
        activations = self.forward(X)
        log_p = _log_softmax(activations[-1])
        rows = np.arange(len(y))
        delta = np.exp(log_p)
        delta[rows, y] -= 1.0
        delta /= len(y)  # d mean cross-entropy / d logits
        weight_grads, bias_grads = [None] * len(self.weights), [None] * len(self.biases)
        for layer in reversed(range(frozen, len(self.weights))):
            below = activations[layer]
            weight_grads[layer] = below.T @ delta + weight_decay * self.weights[layer]
            bias_grads[layer] = delta.sum(axis=0)
            if layer > frozen:
                delta = (delta @ self.weights[layer].T) * below * (1.0 - below)  # logistic' = s (1 - s)
        return float(-np.mean(log_p[rows, y])) + self._penalty(weight_decay), weight_grads, bias_grads

    def train(self, X, y, epochs: int, lr: float, momentum: float = 0.0, batch_size: int = 10,
              weight_decay: float = 0.0, frozen: int = 0) -> list[dict]:
        """Minibatch SGD with momentum on `loss`, rows in a fresh order each epoch; one dict per epoch.

        Each dict holds the epoch and the mean minibatch loss. frozen: the bottom layers left as they are
        (all hidden layers: a softmax regression on fixed features). Raises TrainingDiverged if a minibatch's
        loss becomes NaN or infinite rather than go on with meaningless parameters.
        """
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        history = []
        count = len(self.weights)
        for epoch in range(1, int(epochs) + 1):
            order = self.rng.permutation(len(X))
            losses = []
            for start in range(0, len(X), batch_size):
                batch = order[start:start + batch_size]
                loss, weight_grads, bias_grads = self.gradients(X[batch], y[batch], weight_decay, frozen)
                if not np.isfinite(loss):
                    raise TrainingDiverged(f"fine-tuning diverged in epoch {epoch}: the loss became {loss}; "
                                           "try a smaller learning rate")
                losses.append(loss * len(batch))
                for index, (param, grad) in enumerate(zip(self.weights + self.biases, weight_grads + bias_grads)):
                    if index % count < frozen:
                        continue
                    velocity = self.velocities[index]
                    velocity *= momentum
                    velocity -= lr * grad
                    param += velocity
            history.append({"epoch": epoch, "loss": float(np.sum(losses) / len(X))})
        return history

    def _penalty(self, weight_decay: float) -> float:
        if not weight_decay:
            return 0.0
        return 0.5 * weight_decay * sum(float(np.sum(w * w)) for w in self.weights)


def _logistic(x):
    """1 / (1 + exp(-x)) without overflow warnings: exp of a non-positive number only."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _log_softmax(logits):
    """logits minus their log-sum-exp per row, the row maximum taken out first so exp cannot overflow."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

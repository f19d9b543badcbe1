"""Elementwise functions of the language as sympy functions with derivatives.

sympy has exp, log, tanh and the rest; softplus and sigmoid are defined here
so that derivatives stay in closed form (softplus' = sigmoid,
sigmoid' = sigmoid (1 - sigmoid)) and print as the backends' stable kernels.
"""

from __future__ import annotations

import sympy


class softplus(sympy.Function):
    """log(1 + exp(x)), printed as a numerically stable kernel."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _eval_is_real(self):
        return self.args[0].is_real


class sigmoid(sympy.Function):
    """1 / (1 + exp(-x))."""

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _eval_is_real(self):
        return self.args[0].is_real


FUNCTIONS = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "softplus": softplus,
    "sigmoid": sigmoid,
    "tanh": sympy.tanh,
    "cosh": sympy.cosh,
    "abs": sympy.Abs,
}

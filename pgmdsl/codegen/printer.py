"""sympy printers for the generated modules: NumPy and CuPy share one subclass each.

Functions print through the array module `xp` (the module imports numpy or
cupy under that name); softplus and sigmoid print as the prelude's stable
kernels.
"""

from __future__ import annotations

from sympy.printing.numpy import CuPyPrinter, NumPyPrinter


class _ArrayModuleMixin:
    _array_module_prefixes = ("numpy.", "cupy.")

    def _module_format(self, fqn, register=True):
        for prefix in self._array_module_prefixes:
            if fqn.startswith(prefix):
                return "xp." + fqn[len(prefix):]
        return super()._module_format(fqn, register)

    def _print_softplus(self, expr):
        return f"softplus({self._print(expr.args[0])})"

    def _print_sigmoid(self, expr):
        return f"sigmoid({self._print(expr.args[0])})"

    def _print_Pow(self, expr, rational=False):
        base, exponent = expr.args
        if exponent.is_Integer:
            text = self.parenthesize(base, 60)
            if exponent == -1:
                return f"1/{text}"
            if exponent < 0:
                return f"1/{text}**{-exponent.p}"
            return f"{text}**{exponent.p}"
        return super()._print_Pow(expr, rational)

    def _print_Integer(self, expr):
        return str(expr.p)

    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"


class ArrayPrinter(_ArrayModuleMixin, NumPyPrinter):
    """NumPy printing with `xp.` for the array module."""


class CupyArrayPrinter(_ArrayModuleMixin, CuPyPrinter):
    """CuPy printing with `xp.` for the array module."""

"""Index bookkeeping for one summand: extents, affine ranges and free indices.

Inside a summand every index that is not free (on a let's left-hand side) is
summed. Its extent comes from the axes it indexes plainly (`W[i, j]`); an
index that appears only inside affine forms (`v[y + r]`) has no extent of its
own. Affine forms must stay inside their axis for every value of the indices.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DSLShapeError
from ..source import SourceSpan
from .expr import Affine


@dataclass(frozen=True)
class Occurrence:
    """One index expression standing at one axis of one reference."""

    affine: Affine
    axis: int  # 0-based
    axis_size: int
    ref_text: str  # e.g. "v[c, y+r, x+s]"
    ref_name: str
    span: SourceSpan


def extents(occurrences: list[Occurrence]) -> dict[str, int]:
    """The range of every index, checking that each is used consistently."""
    found: dict[str, tuple[int, Occurrence]] = {}
    for occ in occurrences:
        name = occ.affine.plain
        if name is None:
            continue
        if name in found and found[name][0] != occ.axis_size:
            size, first = found[name]
            raise DSLShapeError(
                f"index '{name}' runs over {size} values in {first.ref_text} "
                f"but over {occ.axis_size} in {occ.ref_text}",
                occ.span,
            )
        found.setdefault(name, (occ.axis_size, occ))
    result = {name: size for name, (size, _) in found.items()}
    for occ in occurrences:
        for name in occ.affine.names:
            if name not in result:
                raise DSLShapeError(
                    f"cannot tell the range of index '{name}': it appears only inside "
                    f"'{occ.affine}' in {occ.ref_text}; use it alone on some axis",
                    occ.span,
                )
    for occ in occurrences:
        _check_range(occ, result)
    return result


def _check_range(occ: Occurrence, ranges: dict[str, int]) -> None:
    if occ.affine.plain is not None:
        return
    low = high = occ.affine.offset
    for name, coef in occ.affine.terms:
        reach = coef * (ranges[name] - 1)
        low += min(0, reach)
        high += max(0, reach)
    if low < 0 or high >= occ.axis_size:
        reach = f"index {low} is" if not occ.affine.terms else f"index '{occ.affine}' runs from {low} to {high},"
        raise DSLShapeError(
            f"{reach} outside axis {occ.axis + 1} of {occ.ref_name} (0 to {occ.axis_size - 1})",
            occ.span,
        )

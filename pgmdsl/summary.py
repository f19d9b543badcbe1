"""The text summary `pgmdsl check` prints: layers, params, terms, schedule."""

from __future__ import annotations


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]" if shape else "scalar"


def summary(model) -> str:
    sizes = ", ".join(f"{k}={v}" for k, v in model.sizes.items())
    lines = [f"model {model.name}({sizes})  [{model.filename}]"]
    if model.stack:
        lines.append("stack (bottom first; trained greedily, top pair undirected):")
        for entry in model.stack:
            for line in summary(entry).splitlines():
                lines.append("  " + line)
        return "\n".join(lines)
    lines.append("layers:")
    for layer in model.layers:
        unit = layer.unit or "real"
        extra = ""
        if layer.pooling:
            extra = f", pooled {'x'.join(map(str, layer.pooling.block))} into {layer.pooling.into}"
        if layer.pooled_from:
            extra = f", max of {layer.pooled_from}'s blocks"
        lines.append(f"  {layer.role:8} {layer.name}{_shape(layer.shape)}: {unit}{extra}")
    total = sum(p.size for p in model.params)
    lines.append(f"params ({total:,} values):")
    for param in model.params:
        constraints = f" : {', '.join(param.constraints)}" if param.constraints else ""
        lines.append(f"  {param.name}{_shape(param.shape)} {param.init}{constraints}  ({param.size:,})")
    if model.lets:
        lines.append("lets:")
        for let in model.lets:
            index = f"[{', '.join(let.indices)}]" if let.indices else ""
            body = " + ".join(str(s) for s in let.summands).replace("+ -", "- ")
            lines.append(f"  {let.name}{index} = {body}")
    lines.append("energy terms:")
    for term in model.terms:
        via = f"  (term {term.via})" if term.via else ""
        lines.append(f"  {term.name}: {term}{via}")
    lines.append("gibbs schedule: " + " / ".join(str(step) for step in model.schedule))
    return "\n".join(lines)

"""When to draw progress bars: one policy for training, AIS and RAISE, in the CLI and in Python.

tqdm.auto draws them (notebook widgets in Jupyter, text in a terminal);
this decides whether they help at all: on a terminal, or in a Jupyter
kernel, whose stderr is no terminal but shows the widgets. A pipe or a log
file gets the results alone, never a wall of carriage returns.
"""

from __future__ import annotations

import sys


def interactive() -> bool:
    """Whether someone is watching: stderr is a terminal, or the code runs in a Jupyter kernel."""
    try:
        if sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):  # a closed or replaced stream
        pass
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"

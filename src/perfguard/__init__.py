"""perfguard engine: architecture rules and startup measurement for Python code.

The engine never imports `pants`. The Pants backend in `perfguard_pants` feeds it targets,
sources and dependency edges, and turns its findings into goal output.
"""

__version__ = "0.1.0"

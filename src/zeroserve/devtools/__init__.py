"""Checks for developers, run from a checkout and never by the server: `python -m zeroserve.devtools.layout`
prints the package import graph and fails on an import cycle between packages, a package importing a layer
above it, or torch/onnxruntime where the server process would load them (the layering of
docs/architecture.md, defined in `layering`). Reads source with `ast` and imports only the standard library
and itself; nothing in zeroserve imports it.
"""

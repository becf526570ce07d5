"""zeroserve: self-hosted, SageMaker-Serverless-compatible inference for Hugging Face models.

The packages, the request's path through them, the process tree, where state lives and which package may
import which: docs/architecture.md, checked by `python -m zeroserve.devtools.layout`.
"""

__version__ = "0.1.0"

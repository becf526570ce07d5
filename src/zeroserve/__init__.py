"""zeroserve: self-hosted, SageMaker-Serverless-compatible inference for Hugging Face models."""

__version__ = "0.1.0"

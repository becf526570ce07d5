"""Other ways to serve the same model, for side-by-side comparisons. Each app runs in `bench/.venv-peers`
(its own dependencies: fastapi, ray[serve], litserve, transformers), never in zeroserve's environment."""

"""CLI command groups; each module attaches its commands to `zeroserve.cli.app` on import."""

"""The `zeroserve` command line beyond `serve`: each module attaches its commands to `zeroserve.cli.app` on
import (`client`: deploy, invoke, ls, describe, rm; `env`; `observe`: cost, logs; `train`; `up`: serve plus
the default model). With `cli.py` it forms the top layer, which may import any package.
"""

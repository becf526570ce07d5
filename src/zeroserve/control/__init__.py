"""The SageMaker control plane: one method per action over the `database` (`actions`), the model
`Environment` and production-variant rules SageMaker enforces beyond botocore's shapes, converted bundles
built once per artifact digest in a supervised converter subprocess (`bundles`), and the endpoint lifecycle
(Creating -> InService | Failed, blue/green Updating) that deploys variants into the `scheduler`. May import
`scheduler`, `workers`, `runtimes` (task names; never a model), `aws`, `artifacts`, `database`
and the foundation; `conversion` only by module name, as a subprocess.
"""

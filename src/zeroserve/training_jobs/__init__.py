"""SageMaker training jobs in script mode: the control-plane actions, the job folder and environment the
SageMaker training toolkit would lay out, the supervised job process, and its inputs and outputs. Job
documents live in the `database`, job folders under `<data dir>/training/<job>/`. May import `control` (to
register its actions), `logs`, `aws`, `artifacts`, `database`, `runtimes`, `sentiment_trainer` (the built-in
trainer, inside the job's own process) and the foundation.
"""

"""SageMaker training jobs in script mode: the control-plane actions, the job folder and environment the
SageMaker training toolkit would lay out, the supervised job process, and its inputs and outputs."""

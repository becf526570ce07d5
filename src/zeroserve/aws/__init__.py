"""The shapes of AWS requests, shared by every API zeroserve speaks (SageMaker, CloudWatch Logs): botocore's
service models (`service_model`), validation derived from them (`validation`), request bodies to parameters
(`payload`), List* filtering, sorting and NextToken pagination (`listing`), ARNs (`arns`), and how boto3 would
read the AWS configuration (`client_env`). Stateless. May import the foundation (`config`, `errors`) and
`database` (the row type listing sorts); nothing that serves or orchestrates.
"""

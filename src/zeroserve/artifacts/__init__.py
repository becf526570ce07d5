"""Model artifacts, from a ModelDataUrl to an unpacked, validated model folder: fetching (S3, `file://`,
plain paths, model directories), safe unpacking of untrusted tarballs, the folders a local URL may name
(`allowed_paths`), and the content-addressed cache under `<data dir>/artifacts/models/<digest>/` with its
file locks. May import only the foundation (`errors`, `config`); boto3 is its own.
"""

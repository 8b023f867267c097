"""Getting files from the Hugging Face Hub through `huggingface_hub`, into the standard Hub cache that other tools
share: `client` (endpoint, offline mode, timeouts, what a repo holds at a commit, errors in words), `download` (one
file, resumed after an interruption, checked against the Hub's sha256, free space checked first) and `cache` (the
cache's layout: blobs named by their hash, snapshots per commit, refs).
"""

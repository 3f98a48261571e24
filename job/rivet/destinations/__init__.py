"""Where parts, manifests and markers are stored: local disk, S3, GCS, Azure Blob, stdout."""

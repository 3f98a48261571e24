"""Pure builders of the Kubernetes objects the operator creates, one module per kind (and their names)."""

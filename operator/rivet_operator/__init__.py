"""Rivet for Kubernetes: a kopf operator for RivetExport and RivetValidation custom resources."""

__version__ = "0.1.0"
GROUP = "rivet.dev"
VERSION = "v1alpha1"

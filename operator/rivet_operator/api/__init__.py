"""The RivetExport and RivetValidation API: the field table, CRD generation, spec -> rivet.yaml, status."""

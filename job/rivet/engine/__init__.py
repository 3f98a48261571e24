"""The export engine: planning, the one chunk path, the one certifier, the run ledger and context."""

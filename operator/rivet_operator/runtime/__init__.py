"""What runs: kopf wiring, the work queue, the API client, login, metrics and the operator's settings."""

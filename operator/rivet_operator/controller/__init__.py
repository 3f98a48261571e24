"""Reconciliation: pure decide functions (observed state -> actions) and the thin shell that applies them."""

"""The output contract's pure core: fingerprints, prefixes, plans, manifests, resume decisions."""

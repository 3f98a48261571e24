"""Rivet: PostgreSQL/MySQL to Parquet/CSV under a verifiable output contract."""

__version__ = "0.1.0"

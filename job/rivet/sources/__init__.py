"""Databases we read from: PostgreSQL and MySQL/MariaDB, streamed as Arrow record batches."""

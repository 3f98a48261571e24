"""Part encoders: Arrow batches in, Parquet or CSV bytes out, streamed to a sink."""

from rivet.formats.writer import PartWriter, open_writer

__all__ = ["PartWriter", "open_writer"]

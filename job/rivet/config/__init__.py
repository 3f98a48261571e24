"""The export definition (rivet.yaml): one typed, immutable model, parsed strictly at the edge."""

from rivet.config.loader import load_config, load_config_text
from rivet.config.model import (
    Compression,
    DestinationConfig,
    DestinationType,
    ExportConfig,
    Format,
    Mode,
    RivetConfig,
    Secret,
    SourceConfig,
    SourceType,
    Tuning,
    Verify,
)

__all__ = [
    "Compression",
    "DestinationConfig",
    "DestinationType",
    "ExportConfig",
    "Format",
    "Mode",
    "RivetConfig",
    "Secret",
    "SourceConfig",
    "SourceType",
    "Tuning",
    "Verify",
    "load_config",
    "load_config_text",
]

"""seg: a Hydra-configured experiment suite for binary semantic segmentation."""

__version__ = "0.1.0"

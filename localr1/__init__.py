"""localr1: a local, offline reasoning assistant for DeepSeek's R1 distilled models."""

__version__ = "0.1.0"

"""Errors of the conversion pipeline; each message says what is wrong and what to do."""

from __future__ import annotations

from localr1.errors import LocalR1Error


class ConversionError(LocalR1Error):
    """A checkpoint could not be converted."""


class CheckpointError(ConversionError):
    """The checkpoint folder is missing a file, or a file contradicts another."""


class UnsupportedModelError(CheckpointError):
    """The checkpoint's architecture or one of its options is not supported."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint holds only pickle weights, which are refused."""


class OutputError(ConversionError):
    """The output file cannot be written (it exists, or the disk is too small)."""


class VerificationError(ConversionError):
    """A converted file does not match its checkpoint."""

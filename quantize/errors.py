"""Errors of the pipeline (conversion, ladder, quality); each message says what is wrong and what to do."""

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


class QuantizeError(LocalR1Error):
    """A ladder could not be built."""


class UnknownTypeError(QuantizeError):
    """A requested quantization type does not exist."""


class SourceError(QuantizeError):
    """The source is missing, corrupt, or not something that can be quantized."""


class RequantizeError(SourceError):
    """The source is already quantized and requantizing was not allowed."""


class ImatrixRequiredError(QuantizeError):
    """A type needs an importance matrix and none is available."""


class ImatrixError(QuantizeError):
    """An importance matrix could not be collected, read or used."""


class CalibrationError(QuantizeError):
    """Calibration or held-out text is missing or malformed."""


class DiskSpaceError(QuantizeError):
    """The output would not fit on the disk."""


class OutputDirError(QuantizeError):
    """The output directory is not ours to write, or its manifest is unreadable."""


class EvaluationError(QuantizeError):
    """A quality measurement could not be made."""


class TaskFileError(EvaluationError):
    """A problem set (`--tasks` JSONL) is missing, unreadable or has a malformed line."""

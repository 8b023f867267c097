"""Errors of the quantization ladder and its quality report; each message says what is wrong and what to do."""

from __future__ import annotations

from localr1.errors import LocalR1Error


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

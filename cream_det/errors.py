"""User-facing error types.

Every mistake a user can make (a wrong path, a malformed file, an infeasible FLOPs range, a
checkpoint that does not fit an arch) raises a subclass of :class:`CreamDetError` whose message
names the file/field and the fix. The command-line tools catch this one base class and print the
message without a traceback; anything else escaping is a bug and keeps its traceback.
"""


class CreamDetError(Exception):
    """Base class of errors caused by user input, printed without a traceback by the tools."""


class ArchError(CreamDetError, ValueError):
    """An architecture (file, choice list or dict) is malformed or outside its search space."""


class SpaceError(CreamDetError, ValueError):
    """A search-space spec is inconsistent, or a request cannot be satisfied in it."""


class DatasetError(CreamDetError, ValueError):
    """A dataset path is missing, in the wrong layout, or its annotation file is malformed."""


class CheckpointError(CreamDetError, ValueError):
    """A checkpoint is unreadable or does not match the architecture it is loaded into."""


class ConfigError(CreamDetError, ValueError):
    """A config value is invalid."""


class TrainingError(CreamDetError, RuntimeError):
    """A run cannot go on: a non-finite loss, a rank that stalled or died. The message names where
    it stopped and the last intact checkpoint to resume from (docs/faults.md)."""


class WriteError(CreamDetError, OSError):
    """A file could not be written (disk full, read-only directory); the file it was to replace is
    untouched. Also an ``OSError``, so code that handles those keeps doing so."""


class LatencyTableError(CreamDetError, ValueError):
    """A latency table file is missing or malformed, or was measured for another space or resolution."""

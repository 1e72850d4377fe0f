"""What the `cascade` command's exit code says: one table for every command.

The numbers are a contract with scripts: a new meaning gets a new number, never an old one.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """Done: a verified answer, a valid config with every key it needs set, every batch item
    answered and verified, a calibrated config written."""

    INTERNAL = 1
    """A bug in cascade (CASCADE_DEBUG=1 shows the traceback)."""

    USAGE = 2
    """A usage or configuration error: the message names the file and the field (argparse
    uses it too for a bad command line)."""

    ATTENTION = 3
    """Finished, but something needs a look: an unverified answer or every tier failed; a valid
    config whose tiers lack a key; batch items unverified or in error, a budget stop, a stop
    on repeated failures; a calibration target that could not be met."""

    PIPE_CLOSED = 141
    """The reader of stdout went away (`cascade demo --json | head -1`): 128 plus SIGPIPE's
    number, as a tool killed by it exits; nothing is printed about it."""

    INTERRUPTED = 130
    """SIGINT (Ctrl-C): 128 plus the signal's number, as shells do; a batch resumes from here."""

    TERMINATED = 143
    """SIGTERM: 128 plus the signal's number; a batch resumes from here."""

"""What the user sees: messages and progress on stderr, data (JSON) on stdout."""

from __future__ import annotations

import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def err_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def usage_error(message: str) -> "NoReturn":  # noqa: F821
    """One line on stderr and exit code 2, as for any bad option."""
    import typer

    sys.stderr.write(f"ispcli: error: {message}\n")
    raise typer.Exit(EXIT_USAGE)

"""The `ispcli` Typer app: one module per subcommand, imported cheaply.

Nothing here imports torch or rawpy at module level: `--help` and shell completion (run at
every TAB) load this file, and must answer in a fraction of a second.
"""

from __future__ import annotations

import typer

from ispcli import __version__
from ispcli.cli import deblur as deblur_cmd
from ispcli.cli import dehaze as dehaze_cmd
from ispcli.cli import demosaic as demosaic_cmd
from ispcli.cli import denoise as denoise_cmd
from ispcli.cli import develop, info, train
from ispcli.cli import enhance as enhance_cmd
from ispcli.cli import eval as eval_cmd
from ispcli.cli import models as models_cmd

app = typer.Typer(
    name="ispcli",
    help="Develop RAW photos (DNG, NEF, CR2, ARW, RAF...) into JPEG, PNG or TIFF.",
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ispcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """ispcli: a command-line RAW photo processor."""


app.command("develop", help=develop.__doc__)(develop.develop)
app.command("denoise", help=denoise_cmd.__doc__)(denoise_cmd.denoise)
app.command("demosaic", help=demosaic_cmd.__doc__)(demosaic_cmd.demosaic)
app.command("enhance", help=enhance_cmd.__doc__)(enhance_cmd.enhance)
app.command("dehaze", help=dehaze_cmd.__doc__)(dehaze_cmd.dehaze)
app.command("deblur", help=deblur_cmd.__doc__)(deblur_cmd.deblur)
app.command("info", help=info.__doc__)(info.info)
app.command("train", help=train.__doc__)(train.train)
app.command("models", help=models_cmd.__doc__)(models_cmd.models)
app.command("eval", help=eval_cmd.__doc__)(eval_cmd.eval_command)


def main() -> None:
    try:
        app(prog_name="ispcli")
        code = 0
    except SystemExit as exc:
        code = exc.code
    _exit_now(code)


def _exit_now(code) -> None:
    """Exit without the interpreter's teardown once torch is loaded. Every output is already
    complete and renamed into place; what teardown would still do (freeing torch's and numpy's
    memory, joining the decoder process) took 0.4 s of a 3 s develop. Commands that never
    loaded torch (help, completion, info, models) exit normally: theirs costs nothing."""
    import os
    import sys

    if "torch" not in sys.modules:
        sys.exit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (ispcli ... | head) has nothing left to say
            pass
    decoder = sys.modules.get("ispcli.io.decoder")
    if decoder is not None:
        decoder.shutdown()
    os._exit(code)

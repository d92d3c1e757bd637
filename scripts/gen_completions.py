"""Regenerate completions/ispcli.{bash,zsh,fish} from the Typer app.

Run after changing any command or option: `python scripts/gen_completions.py`.
tests/test_completions.py fails while the committed scripts are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "completions"
SHELLS = {"bash": "ispcli.bash", "zsh": "_ispcli", "fish": "ispcli.fish"}


def render(shell: str) -> str:
    # The same text `ispcli --show-completion` prints; at every TAB the shell then runs
    # `_ISPCLI_COMPLETE=complete_<shell> ispcli`, answered by Typer from the app's options.
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="ispcli", complete_var="_ISPCLI_COMPLETE", shell=shell) + "\n"


def main(check: bool = False) -> int:
    stale = []
    for shell, name in SHELLS.items():
        text = render(shell)
        path = OUT / name
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale completion scripts: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv))

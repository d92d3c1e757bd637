"""Shell completion: committed scripts match the app, and a TAB answers without torch."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def test_completion_scripts_are_up_to_date():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_completions.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + "\nrun: python scripts/gen_completions.py"


def test_tab_completes_commands_and_options_without_importing_torch():
    code = ("import sys, runpy\n"
            "try:\n    runpy.run_module('ispcli', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'completion imported torch'\n")
    env = {**os.environ, "_ISPCLI_COMPLETE": "complete_bash", "COMP_WORDS": "ispcli develop --color-sp",
           "COMP_CWORD": "2"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["--color-space"]
    env.update(COMP_WORDS="ispcli de", COMP_CWORD="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.stdout.split() == ["develop", "denoise", "demosaic", "dehaze", "deblur"]

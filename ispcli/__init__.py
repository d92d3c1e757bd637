"""ispcli: a command-line RAW photo processor.

Importing the package must stay cheap (no torch, no rawpy): `--help`, shell completion and
`ispcli info` run through here at every keystroke.
"""

__version__ = "0.1.0"

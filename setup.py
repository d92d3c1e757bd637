"""Packaging glue that pyproject.toml cannot express: the top-level weights/ folder ships
inside the package as `ispcli/_weights`.

DESIGN.md keeps trained weights at the top level, outside the package, yet `pip install`
users must get them, found the same way as in a checkout (`ispcli.models.weights.weights_dir`
looks for `ispcli/_weights/manifest.json` next to the installed package, else `weights/`
beside it). So `ispcli._weights` is declared as a data-only package whose source directory
is `weights/` (`package_dir`), and its `package_data` is the manifest and the `*.pt` files.
setuptools then copies them into every wheel and sdist the normal way, with no build hook.
Editable installs (`pip install -e .`) map `ispcli` to ./ispcli only; the code finds
./weights there through its checkout fallback. Lock and temp files (`.manifest.json.lock`,
`.NAME.pt.tmp`) never match these patterns.

A fresh clone may have no weights/ folder (git keeps no empty folders, and weights are
written by `ispcli train`): then the package is simply left out, and the wheel ships
without models (`ispcli models` says "no models installed").
Everything else (metadata, dependencies, entry point) is in pyproject.toml.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent

packages = find_packages(where=str(HERE), include=["ispcli", "ispcli.*"])
package_dir: dict[str, str] = {}
package_data: dict[str, list[str]] = {}
if (HERE / "weights").is_dir():
    packages.append("ispcli._weights")
    package_dir["ispcli._weights"] = "weights"
    package_data["ispcli._weights"] = ["manifest.json", "*.pt"]

setup(packages=packages, package_dir=package_dir, package_data=package_data)

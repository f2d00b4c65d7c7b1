"""Maps the repository's folders onto one import namespace, `halo_live`, and builds the
optional compiled span scanner; the project's metadata is in pyproject.toml.

The folders `exporter/ indexer/ engine/ demo/` install as `halo_live.exporter`,
`halo_live.indexer`, `halo_live.engine` and `halo_live.demo`; nothing is
installed as a bare top-level `exporter`, `engine`, ... (halo-engine installs
its own `engine`). The scanner (indexer/_scan.c) is `optional=True`: without a
C compiler the install still succeeds and the index parses spans in pure Python
(indexer/parse.py), which gives the same index, slower.
"""

from setuptools import Extension, find_packages, setup

ROOMS = ("exporter", "indexer", "engine", "demo")

package_dir = {"halo_live": "halo_live"}
packages = ["halo_live"]
for room in ROOMS:
    package_dir[f"halo_live.{room}"] = room
    packages += [f"halo_live.{room}"] + [f"halo_live.{room}.{sub}" for sub in find_packages(room)]

setup(
    package_dir=package_dir,
    packages=packages,
    # `halo ui`'s page: hand-written ES modules, CSS and HTML, shipped as they are
    package_data={"halo_live.engine.ui": ["static/*.html", "static/*.js", "static/*.css", "static/*.svg"]},
    ext_modules=[Extension("halo_live.indexer._scan", ["indexer/_scan.c"], optional=True,
                           extra_compile_args=["-O2"])],
)

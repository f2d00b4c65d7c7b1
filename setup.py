"""Builds the optional compiled span scanner (indexer/_scan.c); the rest is in pyproject.toml.

`optional=True`: without a C compiler the install still succeeds and the index
parses spans in pure Python (indexer/parse.py), which gives the same index, slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("indexer._scan", ["indexer/_scan.c"], optional=True,
                             extra_compile_args=["-O2"])])

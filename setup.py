"""Installs kfactor: Knowledge Factorization for Keras 3 (TF backend).

The metadata (name, version, dependencies, extras, package data, the
`kfactor` command) lives in pyproject.toml's `[project]` table; this file
is the setuptools entry point the design card asks for.
"""

from setuptools import setup

setup()

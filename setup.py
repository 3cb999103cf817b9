"""The one compiled module (everything else is in pyproject.toml): the ring reader's hot loop.

opencws.probe.records falls back to its Python twin, slower, when this is not built."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("opencws.probe._ringdecoder", ["src/opencws/probe/_ringdecoder.c"],
                             extra_compile_args=["-O2", "-Wall"])])

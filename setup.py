"""The compiled modules (everything else is in pyproject.toml): the ring reader's hot loop, the tracing
context hook's attach/detach, and the backend intake's single pass per body.

opencws.probe.records, opencws.tracing.context and opencws.backend.intake fall back to their Python twins,
slower, when these are not built."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("opencws.probe._ringdecoder", ["src/opencws/probe/_ringdecoder.c"], extra_compile_args=["-O2", "-Wall"]),
    Extension("opencws.tracing._hook", ["src/opencws/tracing/_hook.c"], extra_compile_args=["-O2", "-Wall"]),
    Extension("opencws.backend._intake", ["src/opencws/backend/_intake.c"], extra_compile_args=["-O2", "-Wall"]),
])

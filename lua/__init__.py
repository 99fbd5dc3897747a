"""The scheduler's Lua scripts (mapped to the ``scheduler.lua`` package).

This directory stays at the top level of the repository; ``pyproject.toml``
maps it to ``scheduler.lua`` so ``importlib.resources`` finds the scripts
both from an editable install and from a built wheel. See
``scheduler/lualoader.py`` for the loader and ``lua/lib/`` for the shared code
each script includes with ``--@include lib/<file>.lua``.
"""

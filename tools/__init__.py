"""Development tools that are not part of the installed ``ordersync`` package (the wheel holds only
``src/ordersync``). Run them from the repository's root, where ``python -m tools.<name>`` finds them; the
tests reach them through pytest's ``pythonpath``."""

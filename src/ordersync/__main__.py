"""``python -m ordersync``: the same as the ``ordersync`` console script."""

from ordersync.cli import main

main()

"""``python -m ordersync.chaos``: one chaos run (see ``driver.py``)."""

import sys

from ordersync.chaos.driver import main

sys.exit(main())

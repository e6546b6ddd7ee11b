"""``python -m tools.chaos``: one chaos run (see ``driver.py``)."""

import sys

from tools.chaos.driver import main

sys.exit(main())

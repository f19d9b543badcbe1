"""`python -m pgmdsl ...`: the same command line as `pgmdsl ...`."""

import sys

from .cli import main

sys.exit(main())

"""`python -m mypt_tui.cli`: the same as the `mypt` command."""

import sys

from mypt_tui.cli.main import main

sys.exit(main())

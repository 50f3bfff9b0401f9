"""The terminal app: app (the shell), screens/ (one per mode) and widgets/.

Importing it sets how long OpenMP threads spin before they sleep, before torch is loaded. An
in-app run shares its process with the UI, and torch's threads wait for work between parallel
regions. GNU OpenMP's default (300,000 spins) trains at headless speed on an idle machine, but on
a busy one the in-app run of the test suite's tiny model fell to about one step a second (headless
kept its speed). Passive waits (sleep at once) cured that and cost 0.34x headless on an idle
machine. A short spin, GOMP_SPINCOUNT=10000, keeps both (bench/RESULTS.md). The user's own
OMP_WAIT_POLICY or GOMP_SPINCOUNT wins; a process that loaded torch before the app keeps what it
had. A detached run is a process of its own with no UI: it starts without the app's setting
(services.processes.detached_env).
"""

import os

APP_SPINCOUNT = "10000"

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = APP_SPINCOUNT
    os.environ["MYPT_APP_SPINCOUNT"] = "1"  # set by the app, not the user

"""The terminal app. Importing it sets how OpenMP threads wait, before torch is loaded.

An in-app run computes with torch's OpenMP threads, as many as there are cores, and by default
they spin at every barrier waiting for work. Spinning, they kept the cores from the UI thread:
with the test suite's tiny model training in the app, a key took seconds to show its effect (or
never did while the machine had other work), and training itself slowed down. Waiting passively
puts them to sleep instead: keys show at once and the run keeps its speed. A user's own
OMP_WAIT_POLICY wins; in a process that loaded torch before the app, this changes nothing. A
detached run is a process of its own with no UI to share with: it starts without the app's
setting (services.processes).
"""

import os

if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["MYPT_APP_OMP_WAIT_POLICY"] = "1"  # set by the app, not the user

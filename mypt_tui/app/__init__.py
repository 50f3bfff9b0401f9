"""The terminal app: app (the shell), screens/ (one per mode) and widgets/.

It leaves OpenMP's wait policy to the user and torch: an in-app run trains as fast as a headless
one only with the default (threads spin briefly before they sleep). Keys stay quick because the
trainer lets the GIL go once a step and the screen repaints a few times a second at most
(bench/RESULTS.md).
"""

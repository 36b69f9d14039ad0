"""`import contprof.auto` starts profiling from the environment and config
file, like ddtrace.profiling.auto. In a sub-interpreter it does nothing
(see _inert.py)."""
import contprof

contprof.start()

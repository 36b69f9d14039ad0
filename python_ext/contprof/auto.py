"""`import contprof.auto` starts profiling from the environment and config
file, like ddtrace.profiling.auto."""
import contprof

contprof.start()

# Python overhead benchmark (bench/python_overhead.py), included by
# bench/CMakeLists.txt: CPU-bound and allocation-heavy workloads with and
# without the profiler at defaults, for each interpreter python_ext/ built;
# bench/python_events.py: the lock and exception profiles' cost;
# bench/python_native_bias.py: where native-frame samples land;
# bench/python_hook_floor.py: the allocation hook's cost in one process.
#   cmake --build <build> --target bench_python3.11   (one interpreter)
#   cmake --build <build> --target bench_python_run   (all of them)
# Each interpreter takes a few minutes: this is not a test.
# bench_<name><ver>: run <script> --pkg <that interpreter's package>, and
# again with each extra argument list given (";"-separated), after the
# package for that interpreter is built; part of bench_python_run.
function(contprof_py_bench name ver py tag comment script)
  set(_cmds COMMAND ${py} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${script} --pkg ${CMAKE_BINARY_DIR}/python/${ver})
  foreach(_extra ${ARGN})
    list(APPEND _cmds COMMAND ${py} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${script}
         --pkg ${CMAKE_BINARY_DIR}/python/${ver} ${_extra})
  endforeach()
  add_custom_target(bench_${name}${ver} ${_cmds} USES_TERMINAL VERBATIM COMMENT "Python ${ver} ${comment}")
  add_dependencies(bench_${name}${ver} contprof_py${tag})
  add_dependencies(bench_python_run bench_${name}${ver})
endfunction()

get_property(_contprof_py_built GLOBAL PROPERTY CONTPROF_PY_BUILT)
if(_contprof_py_built)
  add_custom_target(bench_python_run)
  foreach(_entry ${_contprof_py_built})
    string(REPLACE "|" ";" _parts "${_entry}")
    list(GET _parts 0 _py)
    list(GET _parts 1 _ver)
    string(REPLACE "." "" _tag ${_ver})
    contprof_py_bench(python ${_ver} ${_py} ${_tag} "profiler overhead benchmark" python_overhead.py)
    # Lock and exception profiles: CPU ratios and callgrind counts.
    contprof_py_bench(python_events ${_ver} ${_py} ${_tag} "lock/exception profile overhead benchmark"
                      python_events.py --callgrind)
    # The allocation hook's cost in the interpreter's own loops, beside a
    # bare pass-through wrapper (the allocator API's floor).
    contprof_py_bench(python_hook_floor ${_ver} ${_py} ${_tag} "allocation hook floor benchmark"
                      python_hook_floor.py)
    # Native frames (opt-in): where their samples land against the CPU.
    contprof_py_bench(python_native_bias ${_ver} ${_py} ${_tag} "native-frames sampling bias"
                      python_native_bias.py)
  endforeach()
  add_dependencies(bench bench_python_run)
endif()

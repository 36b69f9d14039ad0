# Python overhead benchmark (bench/python_overhead.py), included by
# bench/CMakeLists.txt: CPU-bound and allocation-heavy workloads with and
# without the profiler at defaults, for each interpreter python_ext/ built;
# bench/python_events.py: the lock and exception profiles' cost;
# bench/python_native_bias.py: where native-frame samples land;
# bench/python_hook_floor.py: the allocation hook's cost in one process.
#   cmake --build <build> --target bench_python3.11   (one interpreter)
#   cmake --build <build> --target bench_python_run   (all of them)
# Each interpreter takes a few minutes: this is not a test.
get_property(_contprof_py_built GLOBAL PROPERTY CONTPROF_PY_BUILT)
if(_contprof_py_built)
  add_custom_target(bench_python_run)
  foreach(_entry ${_contprof_py_built})
    string(REPLACE "|" ";" _parts "${_entry}")
    list(GET _parts 0 _py)
    list(GET _parts 1 _ver)
    string(REPLACE "." "" _tag ${_ver})
    add_custom_target(bench_python${_ver}
      COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/python_overhead.py --pkg ${CMAKE_BINARY_DIR}/python/${_ver}
      USES_TERMINAL VERBATIM
      COMMENT "Python ${_ver} profiler overhead benchmark")
    add_dependencies(bench_python${_ver} contprof_py${_tag})
    # Lock and exception profiles: CPU ratios and callgrind counts.
    add_custom_target(bench_python_events${_ver}
      COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/python_events.py --pkg ${CMAKE_BINARY_DIR}/python/${_ver}
      COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/python_events.py --pkg ${CMAKE_BINARY_DIR}/python/${_ver} --callgrind
      USES_TERMINAL VERBATIM
      COMMENT "Python ${_ver} lock/exception profile overhead benchmark")
    add_dependencies(bench_python_events${_ver} contprof_py${_tag})
    # The allocation hook's cost in the interpreter's own loops, beside a
    # bare pass-through wrapper (the allocator API's floor).
    add_custom_target(bench_python_hook_floor${_ver}
      COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/python_hook_floor.py --pkg ${CMAKE_BINARY_DIR}/python/${_ver}
      USES_TERMINAL VERBATIM
      COMMENT "Python ${_ver} allocation hook floor benchmark")
    add_dependencies(bench_python_hook_floor${_ver} contprof_py${_tag})
    add_dependencies(bench_python_run bench_python_hook_floor${_ver})
    # Native frames (opt-in): where their samples land against the CPU.
    add_custom_target(bench_python_native_bias${_ver}
      COMMAND ${_py} ${CMAKE_CURRENT_LIST_DIR}/python_native_bias.py --pkg ${CMAKE_BINARY_DIR}/python/${_ver}
      USES_TERMINAL VERBATIM
      COMMENT "Python ${_ver} native-frames sampling bias")
    add_dependencies(bench_python_native_bias${_ver} contprof_py${_tag})
    add_dependencies(bench_python_run bench_python_native_bias${_ver})
    add_dependencies(bench_python_run bench_python_events${_ver})
    add_dependencies(bench_python_run bench_python${_ver})
  endforeach()
  add_dependencies(bench bench_python_run)
endif()

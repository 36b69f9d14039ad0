# JVM agent overhead benchmark (bench/jvm_overhead.py): CPU-bound and
# allocation-heavy workloads with and without the agent, next to JFR.
#   cmake --build <build> --target bench_jvm_run
if(TARGET contprof_jvm)
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    set(_jdk_args "")
    foreach(j ${CONTPROF_JDKS})
      list(APPEND _jdk_args --jdk ${j})
    endforeach()
    add_custom_target(bench_jvm_run
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/jvm_overhead.py
              --agent $<TARGET_FILE:contprof_jvm> ${_jdk_args}
              --work ${CMAKE_CURRENT_BINARY_DIR}/jvm_overhead
      DEPENDS contprof_jvm USES_TERMINAL
      COMMENT "JVM agent overhead benchmark (~10 min)")
    add_dependencies(bench bench_jvm_run)
  endif()
endif()

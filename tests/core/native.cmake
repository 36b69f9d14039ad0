# Tests of the native unwinder and symboliser (common/src/unwind.c,
# native_modules.c, native_symbols.c, demangle.c). native_plugin is a shared
# object the test loads with dlopen after the unwinder started.
add_library(test_native_plugin MODULE native_plugin.c)
target_compile_options(test_native_plugin PRIVATE ${CONTPROF_WARNINGS})
contprof_core_test(test_native_unwind SOURCES test_native_unwind.c
  ARGS $<TARGET_FILE:test_native_plugin>)
foreach(t test_native_unwind test_native_unwind_asan)
  if(TARGET ${t})
    add_dependencies(${t} test_native_plugin)
    target_link_libraries(${t} PRIVATE dl)
  endif()
endforeach()

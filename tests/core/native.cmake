# Tests of the native unwinder and symboliser (common/src/unwind.c,
# native_modules.c, native_symbols.c, demangle.c). native_plugin is a shared
# object the test loads with dlopen after the unwinder started.
add_library(test_native_plugin MODULE native_plugin.c)
target_compile_options(test_native_plugin PRIVATE ${CONTPROF_WARNINGS})
# Stripped copies of it: stripped/ with its symbols in a separate debug file
# (stripped/.debug/, found through .gnu_debuglink), nodebug/ without one.
set(_plug $<TARGET_FILE:test_native_plugin>)
set(_plugdir $<TARGET_FILE_DIR:test_native_plugin>)
set(_plugname $<TARGET_FILE_NAME:test_native_plugin>)
add_custom_command(TARGET test_native_plugin POST_BUILD
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_plugdir}/stripped/.debug ${_plugdir}/nodebug
  COMMAND ${CMAKE_OBJCOPY} --only-keep-debug ${_plug} ${_plugdir}/stripped/.debug/${_plugname}.debug
  COMMAND ${CMAKE_OBJCOPY} --strip-all --add-gnu-debuglink=${_plugdir}/stripped/.debug/${_plugname}.debug
          ${_plug} ${_plugdir}/stripped/${_plugname}
  COMMAND ${CMAKE_OBJCOPY} --strip-all ${_plug} ${_plugdir}/nodebug/${_plugname}
  VERBATIM)
contprof_core_test(test_native_unwind SOURCES test_native_unwind.c
  ARGS $<TARGET_FILE:test_native_plugin>)
foreach(t test_native_unwind test_native_unwind_asan)
  if(TARGET ${t})
    add_dependencies(${t} test_native_plugin)
    target_link_libraries(${t} PRIVATE dl)
  endif()
endforeach()

# Tests of the core's collector part: settings, JSON, tags and runtime
# info, the collector/scheduler (incl. fork and allocation failures), the
# exporters against a local test intake (tests/core/intake_server.c,
# libmicrohttpd, 127.0.0.1 only), and the demo app end to end.
find_library(CONTPROF_MHD_LIBRARY microhttpd REQUIRED)

contprof_core_test(test_settings_precedence SOURCES test_settings_precedence.c)
contprof_core_test(test_settings_sources SOURCES test_settings_sources.c)
contprof_core_test(test_json_writer SOURCES test_json_writer.c)
contprof_core_test(test_collector_run SOURCES test_collector_run.c)
contprof_core_test(test_collector_torture SOURCES test_collector_torture.c)
contprof_core_test(test_export_intake SOURCES test_export_intake.c intake_server.c)
foreach(t test_export_intake test_export_intake_asan)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE ${CONTPROF_MHD_LIBRARY})
  endif()
endforeach()

# The demo app end to end (plain build only: it runs the demo binary).
add_executable(test_collector_demo test_collector_demo.c)
target_include_directories(test_collector_demo PRIVATE ${CMAKE_SOURCE_DIR}/common/src ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_options(test_collector_demo PRIVATE ${CONTPROF_WARNINGS})
target_compile_definitions(test_collector_demo PRIVATE _GNU_SOURCE CP_TEST_BINARY_DIR="${CMAKE_CURRENT_BINARY_DIR}")
target_link_libraries(test_collector_demo PRIVATE contprof_core ${CMOCKA_LIBRARY})
find_program(CONTPROF_GO go)
set(_cp_demo_go "")
if(CONTPROF_GO)
  set(_cp_demo_go "${CONTPROF_GO}")
endif()
add_test(NAME test_collector_demo COMMAND test_collector_demo $<TARGET_FILE:contprof_demo> "${_cp_demo_go}")
set_tests_properties(test_collector_demo PROPERTIES LABELS "core" TIMEOUT 60)

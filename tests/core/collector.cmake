# Tests of the core's collector part: settings, JSON, tags and runtime
# info, the collector/scheduler (incl. fork and allocation failures), the
# exporters against a local test intake (tests/core/intake_server.c,
# libmicrohttpd, 127.0.0.1 only), and the demo app end to end.
find_library(CONTPROF_MHD_LIBRARY microhttpd REQUIRED)

contprof_core_test(test_settings_precedence SOURCES test_settings_precedence.c)
contprof_core_test(test_settings_sources SOURCES test_settings_sources.c)
contprof_core_test(test_json_writer SOURCES test_json_writer.c)
contprof_core_test(test_os SOURCES test_os.c TSAN)
contprof_core_test(test_rate_sampler SOURCES test_rate_sampler.c)
contprof_core_test(test_collector_run SOURCES test_collector_run.c TSAN)
contprof_core_test(test_collector_torture SOURCES test_collector_torture.c)
contprof_core_test(test_collector_stress SOURCES test_collector_stress.c TSAN)
contprof_core_test(test_export_retention SOURCES test_export_retention.c)
if(TARGET test_export_retention_asan)
  set_property(TEST test_export_retention_asan APPEND PROPERTY ENVIRONMENT CP_RETENTION_PROFILES=1000)
endif()
contprof_core_test(test_export_intake SOURCES test_export_intake.c intake_server.c)
contprof_core_test(test_diagnose SOURCES test_diagnose.c intake_server.c)
contprof_core_test(test_export_faults SOURCES test_export_faults.c intake_server.c TSAN)
foreach(t test_export_intake test_export_intake_asan test_diagnose test_diagnose_asan test_export_faults
          test_export_faults_asan test_export_faults_tsan)
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
set_tests_properties(test_collector_demo PROPERTIES LABELS "core" TIMEOUT 60 RUN_SERIAL TRUE)

# Uploads through HTTP CONNECT and forwarding proxies (HTTPS_PROXY,
# HTTP_PROXY, NO_PROXY, proxy_url with a wrong password) to local HTTP and
# HTTPS intakes; needs python3 and openssl.
find_program(CONTPROF_PY3 python3)
find_program(CONTPROF_OPENSSL openssl)
if(CONTPROF_PY3 AND CONTPROF_OPENSSL)
  add_test(NAME test_export_proxy COMMAND ${CONTPROF_PY3} ${CMAKE_CURRENT_SOURCE_DIR}/proxy_test.py
           $<TARGET_FILE:contprof_demo>)
  set_tests_properties(test_export_proxy PROPERTIES LABELS "core" TIMEOUT 300)
endif()

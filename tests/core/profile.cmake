# Tests of the core's profile part: protobuf wire format, aggregation,
# pprof encoding/decoding (including round trips through protoc and
# go tool pprof), allocation-failure injection, the run summary, and
# errors/buffers/logging.
contprof_core_test(test_pb_wire SOURCES test_pb_wire.c)
contprof_core_test(test_profile_encode SOURCES test_profile_encode.c)
contprof_core_test(test_profile_agg SOURCES test_profile_agg.c)
contprof_core_test(test_pprof_decode SOURCES test_pprof_decode.c)
contprof_core_test(test_profile_alloc SOURCES test_profile_alloc.c)
contprof_core_test(test_profile_ids SOURCES test_profile_ids.c TSAN)

# Real pprof readers for the round-trip test. Missing tools make their
# checks skip (CI installs them: protobuf-compiler, golang-go,
# golang-github-google-pprof-dev).
find_program(CONTPROF_PROTOC protoc)
find_program(CONTPROF_GO go)
file(GLOB _cp_profile_proto
  /usr/share/gocode/src/github.com/google/pprof/proto/profile.proto
  /usr/share/go*/src/github.com/google/pprof/proto/profile.proto)
set(_cp_proto_dir "")
if(_cp_profile_proto)
  list(GET _cp_profile_proto 0 _cp_first_proto)
  get_filename_component(_cp_proto_dir "${_cp_first_proto}" DIRECTORY)
endif()
set(_cp_protoc "")
if(CONTPROF_PROTOC)
  set(_cp_protoc "${CONTPROF_PROTOC}")
endif()
set(_cp_go "")
if(CONTPROF_GO)
  set(_cp_go "${CONTPROF_GO}")
endif()
contprof_core_test(test_pprof_tools SOURCES test_pprof_tools.c)
foreach(_t test_pprof_tools test_pprof_tools_asan)
  if(TARGET ${_t})
    target_compile_definitions(${_t} PRIVATE CP_PROTOC="${_cp_protoc}" CP_GO="${_cp_go}"
      CP_PROFILE_PROTO_DIR="${_cp_proto_dir}")
  endif()
endforeach()
contprof_core_test(test_profile_summary SOURCES test_profile_summary.c)
contprof_core_test(test_profile_errlog SOURCES test_profile_errlog.c)

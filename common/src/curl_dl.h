/*
 * curl_dl.h — libcurl, loaded when the first upload needs it.
 *
 * Linking libcurl made every profiled process load it and its ~30
 * dependencies (TLS, Kerberos, LDAP, SSH, IDN...) at start: ~5 ms of CPU
 * and their mappings in every Python and JVM process, also when profiles
 * only go to files, the default. Instead libcurl.so.4 (its ABI name since
 * 2006) is opened by cp__curl_load at the start of a profiler that uploads,
 * and by diagnose. The curl_* names below call through cp__curl, so the
 * files that include this header read as plain libcurl code; each entry
 * point calls cp__curl_load first and stops with its error if it fails.
 */
#ifndef CP_CURL_DL_H
#define CP_CURL_DL_H

#define CURL_DISABLE_TYPECHECK 1 /* curl_easy_setopt is called through a pointer */
#include <curl/curl.h>
#include <stdbool.h>

#define CP__CURL_FUNCS(X)                                                                            \
    X(curl_global_init) X(curl_version_info) X(curl_easy_init) X(curl_easy_setopt)                    \
    X(curl_easy_getinfo) X(curl_easy_cleanup) X(curl_easy_strerror) X(curl_easy_escape) X(curl_free) \
    X(curl_mime_init) X(curl_mime_addpart) X(curl_mime_name) X(curl_mime_filename) X(curl_mime_type) \
    X(curl_mime_data) X(curl_mime_free) X(curl_slist_append) X(curl_slist_free_all)                  \
    X(curl_multi_init) X(curl_multi_add_handle) X(curl_multi_perform) X(curl_multi_poll)             \
    X(curl_multi_info_read) X(curl_multi_remove_handle) X(curl_multi_cleanup)

typedef struct cp__curl_api {
#define CP__CURL_MEMBER(f) __typeof__(f) *f;
    CP__CURL_FUNCS(CP__CURL_MEMBER)
#undef CP__CURL_MEMBER
} cp__curl_api;

/* Filled by cp__curl_load, never changed after. */
extern cp__curl_api cp__curl;

/* Open libcurl and run curl_global_init, once per process (thread-safe).
 * false if it cannot be had; cp__curl_error() then says why (dlerror's
 * text, or the failing curl_global_init). */
bool cp__curl_load(void);
const char *cp__curl_error(void);

#ifndef CP__CURL_DL_IMPL
/* curl.h's own same-name macros (an argument-count check) give way. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init cp__curl.curl_global_init
#define curl_version_info cp__curl.curl_version_info
#define curl_easy_init cp__curl.curl_easy_init
#define curl_easy_setopt cp__curl.curl_easy_setopt
#define curl_easy_getinfo cp__curl.curl_easy_getinfo
#define curl_easy_cleanup cp__curl.curl_easy_cleanup
#define curl_easy_strerror cp__curl.curl_easy_strerror
#define curl_easy_escape cp__curl.curl_easy_escape
#define curl_free cp__curl.curl_free
#define curl_mime_init cp__curl.curl_mime_init
#define curl_mime_addpart cp__curl.curl_mime_addpart
#define curl_mime_name cp__curl.curl_mime_name
#define curl_mime_filename cp__curl.curl_mime_filename
#define curl_mime_type cp__curl.curl_mime_type
#define curl_mime_data cp__curl.curl_mime_data
#define curl_mime_free cp__curl.curl_mime_free
#define curl_slist_append cp__curl.curl_slist_append
#define curl_slist_free_all cp__curl.curl_slist_free_all
#define curl_multi_init cp__curl.curl_multi_init
#define curl_multi_add_handle cp__curl.curl_multi_add_handle
#define curl_multi_perform cp__curl.curl_multi_perform
#define curl_multi_poll cp__curl.curl_multi_poll
#define curl_multi_info_read cp__curl.curl_multi_info_read
#define curl_multi_remove_handle cp__curl.curl_multi_remove_handle
#define curl_multi_cleanup cp__curl.curl_multi_cleanup
#endif

#endif /* CP_CURL_DL_H */

/*
 * curl_dl.c — opening libcurl at the first upload (see curl_dl.h).
 */
#define CP__CURL_DL_IMPL /* the plain names, for dlsym and the struct */
#include "curl_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

cp__curl_api cp__curl;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_ok;
static char g_error[256] = "not loaded";

static void load(void)
{
    /* RTLD_LOCAL: its symbols never interpose on the program's own. */
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(g_error, sizeof g_error, "%s", e ? e : "libcurl.so.4 cannot be loaded");
        return;
    }
    cp__curl_api api;
#define CP__CURL_SYM(f)                                                                    \
    if ((*(void **)&api.f = dlsym(h, #f)) == NULL) {                                       \
        snprintf(g_error, sizeof g_error, "libcurl.so.4 has no %s (too old)", #f); \
        return;                                                                             \
    }
    CP__CURL_FUNCS(CP__CURL_SYM)
#undef CP__CURL_SYM
    if (api.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(g_error, sizeof g_error, "curl_global_init failed");
        return;
    }
    cp__curl = api;
    g_ok = true;
    g_error[0] = '\0';
}

bool cp__curl_load(void)
{
    pthread_once(&g_once, load);
    return g_ok;
}

const char *cp__curl_error(void) { return g_error; }

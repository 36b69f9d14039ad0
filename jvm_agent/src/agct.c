/*
 * agct.c — locating AsyncGetCallTrace in libjvm and naming its error codes.
 */
#include "agct.h"

#include <dlfcn.h>
#include <stddef.h>

cp__agct_fn cp__agct_lookup(const void *probe)
{
    void *sym = dlsym(RTLD_DEFAULT, "AsyncGetCallTrace");
    Dl_info info;

    /* The launcher may have loaded libjvm RTLD_LOCAL: open it by the path of
     * a function known to live in it (RTLD_NOLOAD: never load a second one). */
    if (sym == NULL && probe != NULL && dladdr(probe, &info) && info.dli_fname != NULL) {
        void *h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
        if (h != NULL) {
            sym = dlsym(h, "AsyncGetCallTrace");
            dlclose(h);
        }
    }
    return (cp__agct_fn)sym;
}

const char *cp__agct_error_name(int code)
{
    /* HotSpot's ticks_* codes (forte.cpp), negated. */
    static const char *const names[] = {
        "[no_Java_frame]",       /*  0 */
        "[no_class_load]",       /* -1 */
        "[GC_active]",           /* -2 */
        "[unknown_not_Java]",    /* -3 */
        "[not_walkable_not_Java]", /* -4 */
        "[unknown_Java]",        /* -5 */
        "[not_walkable_Java]",   /* -6 */
        "[unknown_state]",       /* -7 */
        "[thread_exit]",         /* -8 */
        "[deoptimization]",      /* -9 */
        "[safepoint]",           /* -10 */
    };
    int i = -code;

    if (i < 0 || i >= (int)(sizeof names / sizeof names[0]))
        return "[unknown_AGCT_error]";
    return names[i];
}

/*
 * test_collector_torture.c — allocation-failure injection across the
 * collector, scheduler, tags, runtime info and exporters: for every
 * allocation of a start → add → flush → stop cycle, fail exactly that one
 * and check the cycle ends cleanly (no crash, no hang; ASan variant: no
 * leak), and that the core works normally again afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alloc.h"
#include "collector_test_util.h"
#include "contprof.h"

static const cp_runtime_desc g_rt = {"python", "python", "CPython", "3.12.1", CP_KIND_CPU | CP_KIND_HEAP};

static void cycle(void)
{
    cp_frame f[2] = {{"leaf", "leaf_sys", "m.py", 7}, {"main", NULL, "m.py", 1}};
    int64_t v[CP_V__COUNT] = {0};
    v[CP_V_CPU_TIME] = 5;
    v[CP_V_HEAP_SPACE] = 64;
    cp_label l = {"thread id", NULL, 7, NULL};
    if (cp_start(&g_rt) == CP_OK) {
        cp_add_sample(f, 2, v, &l, 1);
        cp_runtime_info_set_str("k", "v");
        cp_flush(2000);
        cp_add_sample(f, 2, v, &l, 1);
        cp_stop();
    }
    free(cp_tags_string());
    free(cp_config_to_json());
    free(cp_destinations_describe());
    free(cp_last_profile_path());
}

static void test_every_allocation_fails_once(void **state)
{
    (void)state;
    char *dir = ct_scratch("torture");
    cp_config_reset();
    cp_config_set("output_dir", dir, CP_SRC_OPTION);
    cp_config_set("log_level", "off", CP_SRC_OPTION);
    long n = 1;
    for (; n < 2000; n++) {
        unsigned long before = cp__alloc_injected();
        cp__alloc_fail_after(n);
        cycle();
        cp__alloc_fail_after(-1);
        if (cp__alloc_injected() == before)
            break; /* the cycle needs fewer than n allocations: all covered */
    }
    print_message("%ld allocations failed in turn\n", n - 1);
    assert_true(n > 20 && n < 2000);
    int before = ct_count_files(dir, ".pprof.gz");
    cycle(); /* healthy again */
    assert_int_equal(ct_count_files(dir, ".pprof.gz"), before + 2);
    ct_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_fails_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * agent_options.c — settings from every source the JVM agent has.
 */
#include "agent_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contprof.h"
#include "jvm_agent.h"

#define SYSPROP_PREFIX "contprof."

static bool g_signal_explicit;

/* The core's table row for a setting, or NULL. */
static const cp_setting_info *setting(const char *name)
{
    size_t n = 0;
    const cp_setting_info *t = cp_settings_table(&n);

    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

/* Default for a setting, if the core's table has it. */
static void set_default(const char *name, const char *value)
{
    if (setting(name) != NULL)
        cp_config_set(name, value, CP_SRC_DEFAULT);
}

/* The JVM agent's own defaults, where they differ from the core's: 512 KiB
 * between allocation samples; wall samples every 50 ms (each one wakes a
 * possibly idle thread: 100 Hz costs ~0.5% CPU with a handful of idle
 * threads, 20 Hz is plenty for 60 s profiles). cpu_signal: see below. */
static const struct { const char *name, *value; } g_jvm_defaults[] = {
    {"alloc_interval_bytes", "524288"},
    {"wall_interval_us", "50000"},
    /* Real JVM stacks are deep (javac: a quarter of its CPU is in stacks
     * over 64 frames); 512 as Datadog's Java profiler. */
    {"max_frames", "512"},
};

bool cp__options_jfr_owns_sigprof(jvmtiEnv *jvmti)
{
    jint v = 0;

    if (jvmti == NULL || (*jvmti)->GetVersionNumber(jvmti, &v) != JVMTI_ERROR_NONE)
        return false;
    return ((v & JVMTI_VERSION_MASK_MAJOR) >> JVMTI_VERSION_SHIFT_MAJOR) >= 25;
}

const char *cp__options_default(const char *name)
{
    const cp_setting_info *t = setting(name);

    for (size_t i = 0; i < sizeof g_jvm_defaults / sizeof g_jvm_defaults[0]; i++)
        if (strcmp(name, g_jvm_defaults[i].name) == 0)
            return g_jvm_defaults[i].value;
    return t != NULL && t->default_str != NULL ? t->default_str : "";
}

/* The default in force in this JVM for setting t, as help shows it. */
static const char *jvm_default(const cp_setting_info *t)
{
    const char *d = cp__options_default(t->name);

    if (strcmp(t->name, "cpu_signal") == 0 && cp__options_jfr_owns_sigprof(cp__jvm.jvmti))
        return CP__DEFAULT_RT_SIGNAL " or the next free real-time signal (SIGPROF is left to JFR)";
    return *d ? d : "unset";
}

static void print_setting(const cp_setting_info *t)
{
    /* Some help texts already say what the default is. */
    bool says_default = t->help != NULL && strstr(t->help, "(default") != NULL;
    bool range = t->type == CP_T_INT;

    printf("  %-22s %s", t->name, t->help ? t->help : "");
    if (!says_default || range) {
        printf(" (");
        if (!says_default)
            printf("default: %s%s", jvm_default(t), range ? "; " : "");
        if (range)
            printf("%lld..%lld%s%s", (long long)t->min, (long long)t->max,
                   t->unit && *t->unit ? " " : "", t->unit ? t->unit : "");
        printf(")");
    }
    printf("%s%s\n", t->env_names && *t->env_names ? "; env " : "", t->env_names ? t->env_names : "");
}

static void print_help(void)
{
    size_t n = 0;
    const cp_setting_info *t = cp_settings_table(&n);

    printf("contprof JVM agent %s\n"
           "usage: java -agentpath:/path/libcontprof_jvm.so[=key=value,...] ...\n"
           "  also -Dcontprof.<key>=value, the environment, or config=/path/contprof.properties\n"
           "  defaults below are this JVM's\n\n",
           CP_PROFILER_VERSION);
    printf("  %-22s %s\n", "config", "path of a .properties file with these keys");
    printf("  %-22s %s\n", "help", "print this list and exit");
    printf("  %-22s %s\n", "diagnose", "print the support report (system, JVM, settings and their sources, "
           "destinations checked live) and exit 0 if healthy, 1 if not, without running the program");
    for (size_t i = 0; i < n; i++)
        print_setting(&t[i]);
}

static bool g_diagnose;

bool cp__options_diagnose(void)
{
    return g_diagnose;
}

static bool on_option(const char *key, const char *value, void *ctx)
{
    (void)ctx;
    if (strcmp(key, "config") == 0) {
        cp_config_load_properties(value, CP_SRC_FILE);
        return true;
    }
    if (strcmp(key, "diagnose") == 0) {
        g_diagnose = true;
        return true;
    }
    if (strcmp(key, "help") == 0) {
        print_help();
        fflush(stdout);
        exit(0);
    }
    return false;
}

/* Did this "k=v,k=v" string set cpu_signal? */
static bool sets_signal(const char *opts)
{
    for (const char *p = opts; p != NULL && *p != '\0'; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, "cpu_signal=", 11) == 0 || strncmp(p, "contprof.cpu_signal=", 20) == 0)
            return true;
    return false;
}

void cp__options_load(const char *options)
{
    for (size_t i = 0; i < sizeof g_jvm_defaults / sizeof g_jvm_defaults[0]; i++)
        set_default(g_jvm_defaults[i].name, g_jvm_defaults[i].value);
    cp_config_load_env();
    if (options != NULL && *options != '\0')
        cp_config_parse_options(options, CP_SRC_OPTION, on_option, NULL);
    /* Any source naming the signal counts as the user's choice, even when
     * it names the default (a config file counts by its effect, below). */
    if (sets_signal(options) || getenv("CONTPROF_CPU_SIGNAL") != NULL)
        g_signal_explicit = true;
}

void cp__options_from_sysprops(jvmtiEnv *jvmti)
{
    jint n = 0;
    char **names = NULL, *v;
    size_t plen = strlen(SYSPROP_PREFIX);
    const cp_setting_info *sig = setting("cpu_signal");

    if ((*jvmti)->GetSystemProperties(jvmti, &n, &names) != JVMTI_ERROR_NONE)
        n = 0;
    for (jint i = 0; i < n; i++) {
        if (strncmp(names[i], SYSPROP_PREFIX, plen) == 0 &&
            (*jvmti)->GetSystemProperty(jvmti, names[i], &v) == JVMTI_ERROR_NONE && v != NULL) {
            if (strcmp(names[i] + plen, "cpu_signal") == 0)
                g_signal_explicit = true;
            cp_config_set(names[i] + plen, v, CP_SRC_SYSPROP);
            (*jvmti)->Deallocate(jvmti, (unsigned char *)v);
        }
        (*jvmti)->Deallocate(jvmti, (unsigned char *)names[i]);
    }
    if (names != NULL)
        (*jvmti)->Deallocate(jvmti, (unsigned char *)names);
    /* A value other than the default came from somewhere (e.g. the file). */
    if (sig != NULL && sig->default_str != NULL && strcmp(sig->default_str, cp_config_get()->cpu_signal) != 0)
        g_signal_explicit = true;
}

bool cp__options_signal_explicit(void) { return g_signal_explicit; }

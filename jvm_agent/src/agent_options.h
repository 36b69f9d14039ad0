/*
 * agent_options.h — the agent's settings: -agentpath options, config file,
 * -Dcontprof.* system properties and the environment, all through the
 * core's settings table.
 */
#ifndef CP_JVM_AGENT_OPTIONS_H
#define CP_JVM_AGENT_OPTIONS_H

#include <jvmti.h>
#include <stdbool.h>

/* Agent_OnLoad: front-end defaults, environment, then the option string
 * ("k=v,k=v"; also config=/path.properties and help, which prints every
 * setting and exits). Bad values are logged and skipped. */
void cp__options_load(const char *options);

/* VMInit: -Dcontprof.<setting>=... system properties (CP_SRC_SYSPROP). */
void cp__options_from_sysprops(jvmtiEnv *jvmti);

/* The signal used on JDK 25+ by default, where JFR's CPU-time sampler
 * wants SIGPROF. */
#define CP__DEFAULT_RT_SIGNAL "SIGRTMIN+8"

/* JDK 25 and later have JFR's CPU-time sampler, which refuses to start
 * when SIGPROF has a handler: is this such a JVM? */
bool cp__options_jfr_owns_sigprof(jvmtiEnv *jvmti);

/* The default of a setting in the JVM agent (its own where it has one,
 * else the core's); "" when none. */
const char *cp__options_default(const char *name);

/* True when the `diagnose` option was given: at VMInit the agent prints the
 * support report on stdout and ends the JVM with exit status 0 (healthy) or
 * 1 (a problem found) instead of running the program. */
bool cp__options_diagnose(void);

/* True when cpu_signal was set by the user (not the default). */
bool cp__options_signal_explicit(void);

#endif /* CP_JVM_AGENT_OPTIONS_H */

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

/* True when cpu_signal was set by the user (not the default). */
bool cp__options_signal_explicit(void);

#endif /* CP_JVM_AGENT_OPTIONS_H */

/*
 * code_map.h — what kind of code each Java frame of a sample ran in:
 * interpreted, JIT-compiled, inlined into its caller's compiled code, or
 * native (JNI). AsyncGetCallTrace does not say; this map is built from the
 * JVM's CompiledMethodLoad/Unload events (each nmethod's code range, its root
 * method and the inlining tree at every pc) and DynamicCodeGenerated (the
 * interpreter's code range).
 *
 * Exact for the physical frame the sample's pc is in (the pc lies in one
 * nmethod: its root method is the compiled frame and every frame above it
 * is inlined into it; a pc in the interpreter makes the top frame
 * interpreted). Below that frame AGCT gives no pcs, so the kind is inferred:
 * a frame is inlined when its call site (caller method + bci) inlines it in
 * some live nmethod and the caller is compiled; else compiled when its method
 * has a live nmethod; else interpreted. The inference can be wrong for an
 * activation that started before its method was compiled (it still runs in
 * the interpreter) or that runs an older nmethod with a different inlining.
 */
#ifndef CP_JVM_CODE_MAP_H
#define CP_JVM_CODE_MAP_H

#include <jvmti.h>
#include <stdint.h>

#include "agct.h"
#include "contprof.h"

void JNICALL cp__on_compiled_method_load(jvmtiEnv *jvmti, jmethodID method, jint code_size,
                                         const void *code_addr, jint map_length,
                                         const jvmtiAddrLocationMap *map, const void *compile_info);
void JNICALL cp__on_compiled_method_unload(jvmtiEnv *jvmti, jmethodID method, const void *code_addr);
void JNICALL cp__on_dynamic_code_generated(jvmtiEnv *jvmti, const char *name, const void *address,
                                           jint length);

/* Kinds of the n frames of one sample (leaf first). pc: where the thread
 * was interrupted; java_pc: the return address into its last Java frame
 * when it was in VM or native code (0 = unknown). Resolver thread only
 * (takes the map's lock, which the events take briefly). */
void cp__code_map_kinds(uintptr_t pc, uintptr_t java_pc, const cp__agct_frame *frames, int n,
                        cp_frame_kind *kinds);

#endif /* CP_JVM_CODE_MAP_H */

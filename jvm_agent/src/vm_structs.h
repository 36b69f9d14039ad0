/*
 * vm_structs.h — the few HotSpot internals the sampler reads, located through
 * the tables HotSpot exports for its serviceability agent (gHotSpotVMStructs).
 *
 * Used for threads sampled in VM code (state _thread_in_vm) whose last Java
 * frame AsyncGetCallTrace cannot walk, for the length of one more AGCT call,
 * on the sampled thread itself, then put back exactly:
 *  - the frame anchor has sp but no pc (the interpreter's calls into the VM
 *    leave it so): the pc is filled from the return address below sp, as
 *    HotSpot's x86-64 JavaFrameAnchor::make_walkable does;
 *  - the anchor points into a runtime stub (C1's counter_overflow,
 *    fast_new_instance, C2's _new_instance_Java, ...), whose frame HotSpot
 *    marks as never complete, so AGCT refuses to step over it: the anchor
 *    is moved to the stub's caller by the stub's frame size (its CodeBlob's
 *    _frame_size, found through the code cache's segment map, as HotSpot's
 *    CodeCache::find_blob does), or else through the stub's frame pointer
 *    (C1's stubs set one up; C2's keep none).
 * Only _thread_in_vm: no other thread walks the stack of a thread in that
 * state (safepoints and GC stack scans wait for it to leave it). Every field
 * is optional: if HotSpot lacks one, the repair that needs it is off.
 */
#ifndef CP_JVM_VM_STRUCTS_H
#define CP_JVM_VM_STRUCTS_H

#include <jni.h>
#include <stdbool.h>
#include <stdint.h>

/* Read HotSpot's exported struct, type and constant tables once (`probe`
 * is a function of libjvm); false when they cannot be found. cp__vms_init
 * does it first; alone it is enough for cp__vms_flags. Not thread-safe:
 * the agent's start and its one info thread call it in turn. */
bool cp__vms_read_tables(const void *probe);

/* Find the offsets; `probe` is a function of libjvm (as cp__agct_lookup),
 * env/thread the current thread's (for the JNIEnv -> JavaThread distance).
 * Returns true when the anchor repair is available. Call once, at VMInit. */
bool cp__vms_init(const void *probe, JNIEnv *env, jobject thread);

/* The anchor fields as they were before a repair. */
typedef struct cp__vms_saved {
    volatile uintptr_t *anchor;
    uintptr_t sp, pc, fp;
} cp__vms_saved;

/* The repairs, in the order they are tried. */
enum {
    CP__VMS_FILL_PC,    /* fill a missing pc (unless its frame is one of the below) */
    CP__VMS_STEP_FRAME, /* step over a blob frame AGCT refuses, by its frame size   */
    CP__VMS_STEP_FP,    /* step over a stub frame through its frame pointer         */
    CP__VMS_REPAIRS
};

/* Signal-safe. Repair env's thread's anchor as above, one of the
 * CP__VMS_* ways. Returns true when something was changed; then
 * cp__vms_restore must follow. */
bool cp__vms_repair_anchor(JNIEnv *env, int how, cp__vms_saved *saved);
void cp__vms_restore(const cp__vms_saved *saved);

/* The code blob (HotSpot CodeBlob: an nmethod, a runtime stub, ...)
 * holding a pc: where its code begins, its frame size in words (return
 * address included; <= 0 if it has none) and the offset from its code
 * begin where that frame is complete (< 0: never). */
typedef struct cp__vms_blob {
    uintptr_t start, code;
    int frame_words, complete;
    const char *name;
} cp__vms_blob;

/* Signal-safe. Look up pc in the code cache (reads only HotSpot's code heap
 * descriptors, the committed part of its segment map and the blob's own
 * header). False if pc is in no live blob or the code cache layout is
 * unknown. A blob being freed meanwhile can give a stale answer: callers
 * validate (AGCT does). */
bool cp__vms_find_blob(uintptr_t pc, cp__vms_blob *out);

/* Signal-safe. The highest address of env's thread's stack (HotSpot's
 * JavaThread::_stack_base), 0 if unknown. */
uintptr_t cp__vms_stack_base(JNIEnv *env);

/* Signal-safe. The pc in env's thread's last Java frame when it is in VM or
 * native code (the anchor's pc, or the return address below its sp), 0 if
 * it has none or the offsets are unknown. */
uintptr_t cp__vms_last_java_pc(JNIEnv *env);

/* The VM's flags that are not at their default (command line,
 * environment, ergonomics, management), sorted by name, as `jcmd <pid>
 * VM.flags` prints them ("-XX:+UseG1GC", "-XX:MaxHeapSize=268435456"):
 * emit(flag, arg) for each. Read from HotSpot's flag table (JVMFlag::flags,
 * the table the serviceability agent reads), so it loads no class and runs
 * no Java code. Returns the number emitted, or -1 when the table is
 * unknown (not HotSpot, or the tables were not read). */
int cp__vms_flags(void (*emit)(const char *flag, void *arg), void *arg);

#endif /* CP_JVM_VM_STRUCTS_H */

/*
 * method_resolver.h — jmethodID -> "com.example.Foo.bar", file, line.
 *
 * Used only by the resolver (one thread at a time, under its drain lock).
 * Entries are cached and never freed, so a pointer to one stays valid for
 * the life of the process (the live-heap table keeps such pointers).
 * Methods of unloaded classes come back from JVMTI as errors and resolve to
 * "[unknown]"; HotSpot never reuses a jmethodID for another method.
 *
 * Names are the same in every run for the same code: generated classes lose
 * their per-run parts (cp__normalize_generated), so a lambda reads
 * "Foo$$Lambda.run" and a method-handle form "java.lang.invoke.LambdaForm$MH.invoke".
 */
#ifndef CP_JVM_METHOD_RESOLVER_H
#define CP_JVM_METHOD_RESOLVER_H

#include <jvmti.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cp__method_info {
    jmethodID id;
    char *name;                  /* never NULL                          */
    char *file;                  /* NULL when unknown                   */
    jint nlines;
    jvmtiLineNumberEntry *lines; /* copied, owned by the entry          */
    char *system_name;           /* name + JVM signature, "Foo.calc(I)J";
                                    NULL = same as name                 */
} cp__method_info;

/* The cached entry for id, resolving it on first sight. Never NULL. */
const cp__method_info *cp__method_resolve(jvmtiEnv *jvmti, JNIEnv *jni, jmethodID id);

/* Methods refused because the cache was full (they resolve to
 * "[method cache full]"; those already cached keep resolving). */
uint64_t cp__method_cache_overflows(void);

/* Source line of bytecode index bci, 0 when unknown. */
int64_t cp__method_line(const cp__method_info *m, jint bci);

/* "Lcom/example/Foo;" -> "com.example.Foo", "[I" -> "int[]". Writes at most
 * n bytes (NUL included) to out and returns out. */
char *cp__class_name_from_signature(const char *sig, char *out, size_t n);

/* Rewrite a Java class or method name in place so that generated code has
 * the same name in every run: hidden-class addresses ("Foo$$Lambda$14/0x0000000801001234",
 * also with '.' or '+' before the address) and anonymous-class ids ("/123")
 * go, and the counters of $$Lambda$N, $ProxyN, jdk.proxyN and
 * Generated{Method,Constructor,SerializationConstructor}AccessorN are dropped.
 * Returns s. */
char *cp__normalize_generated(char *s);

/* A stable copy of s (interned; never freed). Falls back to a static
 * "[table full]" string past the cap. */
const char *cp__intern(const char *s);

#endif /* CP_JVM_METHOD_RESOLVER_H */

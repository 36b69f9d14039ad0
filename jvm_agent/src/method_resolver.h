/*
 * method_resolver.h — jmethodID -> "com.example.Foo.bar", file, line.
 *
 * Used only by the resolver (one thread at a time, under its drain lock).
 * Entries are cached and never freed, so a pointer to one stays valid for
 * the life of the process (the live-heap table keeps such pointers).
 * Methods of unloaded classes come back from JVMTI as errors and resolve to
 * "[unknown]"; HotSpot never reuses a jmethodID for another method.
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
} cp__method_info;

/* The cached entry for id, resolving it on first sight. Never NULL. */
const cp__method_info *cp__method_resolve(jvmtiEnv *jvmti, JNIEnv *jni, jmethodID id);

/* Source line of bytecode index bci, 0 when unknown. */
int64_t cp__method_line(const cp__method_info *m, jint bci);

/* "Lcom/example/Foo;" -> "com.example.Foo", "[I" -> "int[]". Writes at most
 * n bytes (NUL included) to out and returns out. */
char *cp__class_name_from_signature(const char *sig, char *out, size_t n);

/* A stable copy of s (interned; never freed). Falls back to a static
 * "[table full]" string past the cap. */
const char *cp__intern(const char *s);

#endif /* CP_JVM_METHOD_RESOLVER_H */

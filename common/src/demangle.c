/*
 * demangle.c — a small Itanium C++ ABI demangler for frame names.
 *
 * Profiles want "Compile::Optimize", not "_ZN7Compile8OptimizeEv", and the
 * core is C (no libstdc++'s __cxa_demangle). This parses the name part of
 * an encoding — nested names, constructors/destructors, operators, the std
 * abbreviations, ABI tags, names local to a function ("f::Closure::run",
 * lambdas as {lambda}) — and skips template arguments (shown as <...>) and
 * the parameter list. Anything else (conversion operators, substitutions
 * inside a name, string literals) answers false and the caller keeps the
 * mangled symbol: a faithful name beats a guessed one.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "unwind.h"

typedef struct dm {
    const char *p;
    char *out;
    size_t n, len;
    const char *last;   /* last source name (for constructors, destructors) */
    size_t last_len;
    int recursions;     /* local names and literal types entered (bounded:
                         * symbol tables are untrusted input) */
    bool fail;
} dm;

static void put(dm *d, const char *s, size_t k)
{
    if (d->fail || d->len + k + 1 > d->n) {
        d->fail = true;
        return;
    }
    memcpy(d->out + d->len, s, k);
    d->len += k;
    d->out[d->len] = '\0';
}

static void puts_(dm *d, const char *s) { put(d, s, strlen(s)); }

static bool number(dm *d, size_t *k)
{
    if (!isdigit((unsigned char)*d->p))
        return false;
    *k = 0;
    while (isdigit((unsigned char)*d->p) && *k < 100000)
        *k = *k * 10 + (size_t)(*d->p++ - '0');
    return true;
}

/* <number><identifier>; emit = false just skips it. */
static bool source_name(dm *d, bool emit)
{
    size_t k;

    if (!number(d, &k) || strnlen(d->p, k) < k)
        return false;
    if (emit) {
        if (k >= 10 && strncmp(d->p, "_GLOBAL__N", 10) == 0)
            puts_(d, "(anonymous namespace)");
        else
            put(d, d->p, k);
        d->last = d->p;
        d->last_len = k;
    }
    d->p += k;
    return true;
}

static const char *operator_name(const char *c)
{
    static const char *const ops[][2] = {
        {"nw", " new"}, {"na", " new[]"}, {"dl", " delete"}, {"da", " delete[]"},
        {"aS", "="}, {"eq", "=="}, {"ne", "!="}, {"lt", "<"}, {"gt", ">"}, {"le", "<="},
        {"ge", ">="}, {"pl", "+"}, {"mi", "-"}, {"ml", "*"}, {"dv", "/"}, {"rm", "%"},
        {"ix", "[]"}, {"cl", "()"}, {"pL", "+="}, {"mI", "-="}, {"mL", "*="}, {"dV", "/="},
        {"ls", "<<"}, {"rs", ">>"}, {"nt", "!"}, {"aa", "&&"}, {"oo", "||"}, {"co", "~"},
        {"an", "&"}, {"or", "|"}, {"eo", "^"}, {"pp", "++"}, {"mm", "--"}, {"pt", "->"},
        {"ad", "&"}, {"de", "*"}, {"aN", "&="}, {"oR", "|="}, {"eO", "^="},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (c[0] == ops[i][0][0] && c[1] == ops[i][0][1])
            return ops[i][1];
    return NULL;
}

static void skip_sub(dm *d);
static bool skip_args(dm *d);

/* A literal's type: a builtin letter, a name, N<nested name>E (an enum
 * such as LN6LogTag4typeE43E) or a substitution (LS3_83E). */
static bool skip_literal_type(dm *d)
{
    if (islower((unsigned char)*d->p)) {
        d->p++;
        return true;
    }
    if (*d->p == 'S') {
        skip_sub(d);
        return true;
    }
    if (*d->p != 'N')
        return source_name(d, false);
    d->p++;
    while (*d->p != 'E') {
        if (*d->p == '\0')
            return false;
        if (isdigit((unsigned char)*d->p)) {
            if (!source_name(d, false))
                return false;
        } else if (*d->p == 'S') {
            skip_sub(d);
        } else if (*d->p == 'I') {
            if (++d->recursions > 64 || !skip_args(d))
                return false;
        } else {
            d->p++;
        }
    }
    d->p++;
    return true;
}

/* L<type><value>E or L_Z<encoding>E, after the L. */
static bool skip_literal(dm *d, int *depth)
{
    if (d->p[0] == '_' && d->p[1] == 'Z') {
        d->p += 2;
        ++*depth; /* the encoding ends with the literal's E */
        return true;
    }
    if (!skip_literal_type(d))
        return false;
    if (*d->p == 'n')
        d->p++;
    while (isalnum((unsigned char)*d->p) && *d->p != 'E')
        d->p++;
    return *d->p++ == 'E';
}

/* S_, S<seq>_, St, Sa...; T_, T<n>_ — inside skipped arguments. */
static void skip_sub(dm *d)
{
    d->p++;
    if (islower((unsigned char)*d->p)) {
        d->p++;
        return;
    }
    while (isdigit((unsigned char)*d->p) || isupper((unsigned char)*d->p))
        d->p++;
    if (*d->p == '_')
        d->p++;
}

/* Skip to the E that closes what is open (depth levels; 0: the construct
 * starting here, e.g. template arguments I...E), with its nesting. */
static bool skip_nested(dm *d, int depth)
{
    do {
        char c = *d->p;
        if (c == '\0')
            return false;
        if (isdigit((unsigned char)c)) {
            if (!source_name(d, false))
                return false;
            continue;
        }
        switch (c) {
        case 'I': case 'N': case 'X': case 'F': case 'J': case 'Z':
            depth++, d->p++;
            break;
        case 'U': /* Ul<lambda's parameters>E<n>_ */
            if (d->p[1] == 'l')
                depth++;
            d->p += d->p[1] ? 2 : 1;
            break;
        case 'E':
            depth--, d->p++;
            break;
        case 'L':
            d->p++;
            if (!skip_literal(d, &depth))
                return false;
            break;
        case 'S': case 'T':
            skip_sub(d);
            break;
        case 'D':
            if (d->p[1] == 't' || d->p[1] == 'T')
                depth++;
            d->p += d->p[1] ? 2 : 1;
            break;
        default:
            d->p++;
        }
    } while (depth > 0);
    return true;
}

static bool skip_args(dm *d) { return skip_nested(d, 0); }

static bool std_abbrev(dm *d)
{
    static const char *const ab[][2] = {
        {"St", "std"}, {"Sa", "std::allocator"}, {"Sb", "std::basic_string"},
        {"Ss", "std::string"}, {"Si", "std::istream"}, {"So", "std::ostream"},
        {"Sd", "std::iostream"},
    };
    for (size_t i = 0; i < sizeof ab / sizeof ab[0]; i++)
        if (d->p[0] == ab[i][0][0] && d->p[1] == ab[i][0][1]) {
            puts_(d, ab[i][1]);
            d->p += 2;
            return true;
        }
    return false;
}

/* One component of a nested name (the separator is already written). */
static bool component(dm *d)
{
    const char *op;

    if (isdigit((unsigned char)*d->p))
        return source_name(d, true);
    if (d->p[0] == 'C' && d->last != NULL) { /* C1, C2, C3, CI1, CI2 */
        d->p += d->p[1] == 'I' ? 3 : 2;
        put(d, d->last, d->last_len);
        return true;
    }
    if (d->p[0] == 'D' && strchr("0124", d->p[1]) && d->p[1] && d->last != NULL) {
        d->p += 2;
        puts_(d, "~");
        put(d, d->last, d->last_len);
        return true;
    }
    if (d->p[0] == 'U' && (d->p[1] == 'l' || d->p[1] == 't')) { /* a lambda, an unnamed type */
        bool lambda = d->p[1] == 'l';
        d->p += 2;
        if (lambda && !skip_nested(d, 1)) /* its parameters, up to E */
            return false;
        while (isdigit((unsigned char)*d->p))
            d->p++;
        if (*d->p++ != '_')
            return false;
        puts_(d, lambda ? "{lambda}" : "{unnamed type}");
        d->last = NULL;
        return true;
    }
    if (islower((unsigned char)d->p[0]) && d->p[1] && (op = operator_name(d->p)) != NULL) {
        d->p += 2;
        puts_(d, "operator");
        puts_(d, op);
        return true;
    }
    return false;
}

static bool nested(dm *d)
{
    bool first = true;

    while (*d->p == 'r' || *d->p == 'V' || *d->p == 'K' || *d->p == 'R' || *d->p == 'O')
        d->p++;
    if (*d->p == 'S') {
        if (!std_abbrev(d))
            return false;
        first = false;
    }
    while (*d->p != 'E') {
        if (*d->p == 'I') {
            if (!skip_args(d))
                return false;
            puts_(d, "<...>");
            continue;
        }
        if (*d->p == 'B') { /* ABI tag: [abi:cxx11], not shown */
            d->p++;
            if (!source_name(d, false))
                return false;
            continue;
        }
        if (*d->p == 'L') { /* internal linkage marker */
            d->p++;
            continue;
        }
        if (!first)
            puts_(d, "::");
        first = false;
        if (!component(d))
            return false;
    }
    d->p++;
    return true;
}

static bool encoding_name(dm *d);

/* Z<function encoding>E<entity>: a name local to a function, shown as
 * "function::entity" (string literals and default arguments: false). */
static bool local_name(dm *d)
{
    if (++d->recursions > 64 || !encoding_name(d) || !skip_nested(d, 1)) /* the function's parameters */
        return false;
    puts_(d, "::");
    if (*d->p == 'N') {
        d->p++;
        return nested(d);
    }
    return component(d);
}

static bool encoding_name(dm *d)
{
    if (d->p[0] == 'T' && (d->p[1] == 'h' || d->p[1] == 'v')) { /* thunks */
        bool virt = d->p[1] == 'v';
        d->p += 2;
        for (int i = 0; i < (virt ? 2 : 1); i++) {
            while (*d->p && *d->p != '_')
                d->p++;
            if (*d->p++ != '_')
                return false;
        }
    }
    if (*d->p == 'L')
        d->p++;
    if (*d->p == 'N') {
        d->p++;
        return nested(d);
    }
    if (*d->p == 'Z') {
        d->p++;
        return local_name(d);
    }
    if (*d->p == 'S' && d->p[1] == 't') {
        d->p += 2;
        puts_(d, "std::");
    }
    if (!component(d))
        return false;
    if (*d->p == 'I') {
        if (!skip_args(d))
            return false;
        puts_(d, "<...>");
    }
    return true;
}

bool cp__demangle(const char *sym, char *out, size_t n)
{
    dm d = {sym + 2, out, n, 0, NULL, 0, 0, false};

    if (sym == NULL || strncmp(sym, "_Z", 2) != 0 || n == 0)
        return false;
    out[0] = '\0';
    return encoding_name(&d) && !d.fail && d.len > 0;
}

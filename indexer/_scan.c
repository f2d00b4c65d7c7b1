/* The compiled twin of indexer/parse.py's pure-Python parse.
 *
 * One pass over each line: validate the JSON (a strict subset of what orjson
 * accepts), pick out only the fields the index keeps, and fold them into
 * per-trace rollups, without building a Python object for the rest of the span.
 * A line this scanner is not sure about (bad JSON, an odd type where a string is
 * expected, an escaped key, deep nesting, a huge number) is handed to a Python
 * callback, parse.normalize_line, which reads it with orjson as the pure-Python
 * parse does; `absorb` below folds either reading in. Both paths give the same
 * Batch; tests/test_index_native.py holds them equal.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 200    /* deeper lines go to the callback (orjson's own limit is 1024) */
#define MAX_DIGITS 200   /* longer numbers go to the callback (orjson rejects one that overflows a double) */
#define INT_DIGITS 18    /* an int this long always fits in int64 */

/* ---- byte buffers ----------------------------------------------------------------- */

typedef struct { char *p; Py_ssize_t n, cap; } Buf;

static int buf_reserve(Buf *b, Py_ssize_t more) {
    if (b->n + more <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + more) cap *= 2;
    char *p = PyMem_Realloc(b->p, cap);
    if (!p) { PyErr_NoMemory(); return -1; }
    b->p = p; b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const char *s, Py_ssize_t n) {
    if (n == 0) return 0;  /* b->p may still be NULL */
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

/* Writers into room already reserved: each returns the end of what it wrote. */
static inline char *put_int(char *o, long long v) {
    /* two digits a step: offsets run to ten digits or more */
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char tmp[24], *d = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        d -= 2;
        memcpy(d, pairs + 2 * (u % 100), 2);
        u /= 100;
    }
    if (u >= 10) { d -= 2; memcpy(d, pairs + 2 * u, 2); }
    else *--d = (char)('0' + u);
    if (v < 0) *--d = '-';
    memcpy(o, d, tmp + sizeof tmp - d);
    return o + (tmp + sizeof tmp - d);
}

#define INT_ROOM 20   /* the most put_int writes */

/* A JSON string as orjson writes it: escapes for '"', '\\' and control bytes only. At most
 * 6 * n + 2 bytes. Eight bytes a step while none needs an escape (ids and names never do). */
static inline char *put_json_str(char *o, const char *s, Py_ssize_t n) {
    static const char hex[] = "0123456789abcdef";
    Py_ssize_t i = 0;
    *o++ = '"';
    for (;;) {
        while (n - i >= 8) {
            uint64_t w, q, b;
            memcpy(&w, s + i, 8);
            q = w ^ (0x0101010101010101ULL * '"');
            b = w ^ (0x0101010101010101ULL * '\\');
            /* a zero byte of q or b, or a byte under 0x20 (bytes >= 0x80 are not flagged) */
            if ((((w - 0x2020202020202020ULL) & ~w) | ((q - 0x0101010101010101ULL) & ~q)
                 | ((b - 0x0101010101010101ULL) & ~b)) & 0x8080808080808080ULL) break;
            memcpy(o, s + i, 8);
            o += 8;
            i += 8;
        }
        /* byte by byte to past the word that needs an escape, or to the end */
        Py_ssize_t stop = n - i >= 8 ? i + 8 : n;
        for (; i < stop; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c >= 0x20 && c != '"' && c != '\\') { *o++ = (char)c; continue; }
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default: *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = hex[c >> 4]; *o++ = hex[c & 15];
            }
        }
        if (i >= n) break;
    }
    *o++ = '"';
    return o;
}

/* Equal bytes, a word at a time: the texts compared here (key names, set values) are short,
 * and most compare equal, where memcmp's call costs more than the compare. */
static inline int same_bytes(const char *a, const char *b, Py_ssize_t n) {
    if (n < 8) return n == 0 || memcmp(a, b, n) == 0;
    uint64_t x, y;
    for (Py_ssize_t i = 0; i + 8 < n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) return 0;
    }
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return x == y;
}

/* ---- the JSON scanner --------------------------------------------------------------- */

typedef struct { const char *p; Py_ssize_t n; } Str;

enum { K_ABSENT = 0, K_NULL, K_FALSE, K_TRUE, K_INT, K_BIGINT, K_FLOAT, K_STR, K_ARR, K_OBJ };

typedef struct { int kind; Str s; long long i; int escaped; } Val;

typedef struct {
    const char *end;   /* end of the data: a line's end is found only once it is read */
    char *arena;       /* decoded strings of escaped values; made once, never moved */
    Py_ssize_t used;
    Py_ssize_t room;   /* bytes from this line to the end: the most its strings decode to */
} Scan;

/* Room for a decoded string at sc->arena + sc->used, made on the first escaped value of a
 * scan: as long as the rest of the data, so later lines never make it move. */
static char *arena(Scan *sc) {
    if (!sc->arena && !(sc->arena = PyMem_Malloc(sc->room > 0 ? sc->room : 1))) return NULL;
    return sc->arena + sc->used;
}

#define HI8 0x8080808080808080ULL
#define LO8 0x0101010101010101ULL

static inline const char *ws(const char *p, const char *end) {
    if (p < end && (unsigned char)*p > ' ') return p;  /* compact JSON: no blank at all */
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    return p;
}

/* Length of a valid UTF-8 sequence at p (first byte >= 0x80), or 0. */
static inline int utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF) {
        return (end - p >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;   /* overlong */
        if (c == 0xED && p[1] > 0x9F) return 0;   /* a surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;   /* overlong */
        if (c == 0xF4 && p[1] > 0x8F) return 0;   /* beyond U+10FFFF */
        return 4;
    }
    return 0;
}

static inline int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    *out = v;
    return 0;
}

/* How many bytes from p on need no attention in a string: not '"', '\\', a control
 * byte or non-ASCII. Sixteen bytes a step with SSE2 (every x86-64 has it), else eight. */
static inline Py_ssize_t plain_run(const char *p, const char *end) {
    const char *s = p;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        /* signed: bytes >= 0x80 are negative, so "less than 0x20" also catches them */
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, slash)),
                                   _mm_cmplt_epi8(x, space));
        int mask = _mm_movemask_epi8(hit);
        if (mask) return (p - s) + __builtin_ctz(mask);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t w, q, b, hit;
        memcpy(&w, p, 8);
        q = w ^ (LO8 * '"');
        b = w ^ (LO8 * '\\');
        hit = (w | ((w - LO8 * 0x20) & ~w) | ((q - LO8) & ~q) | ((b - LO8) & ~b)) & HI8;
        if (hit) {
#if PY_LITTLE_ENDIAN
            return (p - s) + (__builtin_ctzll(hit) >> 3);  /* the lowest flag is always a true one */
#else
            break;
#endif
        }
        p += 8;
    }
    while (p < end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 && *p != '"' && *p != '\\') p++;
    return p - s;
}

/* One escape after the backslash at p; returns the pointer after it (NULL: not sure).
 * With `out`, appends the decoded UTF-8 there. */
static const char *escape(const char *p, const char *end, char **out) {
    if (p + 1 >= end) return NULL;
    char c = p[1], d;
    switch (c) {
    case '"': d = '"'; break;
    case '\\': d = '\\'; break;
    case '/': d = '/'; break;
    case 'b': d = '\b'; break;
    case 'f': d = '\f'; break;
    case 'n': d = '\n'; break;
    case 'r': d = '\r'; break;
    case 't': d = '\t'; break;
    case 'u': {
        unsigned cp, lo;
        if (end - p < 6 || hex4(p + 2, &cp) < 0) return NULL;
        p += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return NULL;  /* a lone low surrogate */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) < 0) return NULL;
            if (lo < 0xDC00 || lo > 0xDFFF) return NULL;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        if (out) {
            unsigned char *o = (unsigned char *)*out;
            if (cp < 0x80) { *o++ = (unsigned char)cp; }
            else if (cp < 0x800) { *o++ = 0xC0 | (cp >> 6); *o++ = 0x80 | (cp & 0x3F); }
            else if (cp < 0x10000) {
                *o++ = 0xE0 | (cp >> 12); *o++ = 0x80 | ((cp >> 6) & 0x3F); *o++ = 0x80 | (cp & 0x3F);
            } else {
                *o++ = 0xF0 | (cp >> 18); *o++ = 0x80 | ((cp >> 12) & 0x3F);
                *o++ = 0x80 | ((cp >> 6) & 0x3F); *o++ = 0x80 | (cp & 0x3F);
            }
            *out = (char *)o;
        }
        return p;
    }
    default: return NULL;
    }
    if (out) *(*out)++ = d;
    return p + 2;
}

/* A string whose opening quote is at p[-1]. With `v`, the decoded text goes to v->s:
 * a slice of the line when it has no escape, else a copy in the arena. */
static const char *string_slow(Scan *sc, const char *p, Val *v) {
    const char *end = sc->end, *start = p;
    char *out = NULL;  /* set once an escape is met while decoding */
    for (;;) {
        /* jump over plain ASCII to the next quote, backslash, control or non-ASCII byte */
        Py_ssize_t k = plain_run(p, end);
        if (out) { memcpy(out, p, k); out += k; }
        p += k;
        if (p >= end) return NULL;
        unsigned char c = (unsigned char)*p;
        if (c == '"') break;
        if (c == '\\') {
            if (v && !out) {
                if (!(out = arena(sc))) { PyErr_Clear(); return NULL; }  /* the callback decides */
                memcpy(out, start, p - start);
                out += p - start;
            }
            p = escape(p, end, v ? &out : NULL);
            if (!p) return NULL;
            continue;
        }
        if (c < 0x20) return NULL;
        if (c < 0x80) {
            if (out) *out++ = (char)c;
            p++;
            continue;
        }
        int n = utf8_len((const unsigned char *)p, (const unsigned char *)end);
        if (!n) return NULL;
        if (out) { memcpy(out, p, n); out += n; }
        p += n;
    }
    if (v) {
        v->kind = K_STR;
        if (out) {
            v->s.p = sc->arena + sc->used;
            v->s.n = out - v->s.p;
            sc->used += v->s.n;
            v->escaped = 1;
        } else {
            v->s.p = start;
            v->s.n = p - start;
            v->escaped = 0;
        }
    }
    return p + 1;
}

/* string_slow, with the common case inlined where strings are read: plain ASCII up to the
 * closing quote (most keys and values), which needs no call. */
static inline const char *string(Scan *sc, const char *p, Val *v) {
    Py_ssize_t k = plain_run(p, sc->end);
    if (p + k < sc->end && p[k] == '"') {
        if (v) {
            v->kind = K_STR;
            v->s.p = p;
            v->s.n = k;
            v->escaped = 0;
        }
        return p + k + 1;
    }
    return string_slow(sc, p, v);
}

static const char *number(const char *p, const char *end, Val *v) {
    const char *start = p;
    int neg = 0, digits = 0, is_int = 1;
    long long acc = 0;
    if (*p == '-') { neg = 1; p++; }
    if (p >= end || *p < '0' || *p > '9') return NULL;
    if (*p == '0') {
        p++;
        digits = 1;
        if (p < end && *p >= '0' && *p <= '9') return NULL;  /* a leading zero */
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < INT_DIGITS) acc = acc * 10 + (*p - '0');
            digits++;
            p++;
        }
    }
    if (p < end && *p == '.') {
        is_int = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') { digits++; p++; }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int exp_digits = 0;
        is_int = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        while (p < end && *p >= '0' && *p <= '9') { exp_digits++; p++; }
        if (exp_digits > 2) return NULL;  /* could overflow to infinity, which orjson rejects */
    }
    if (digits > MAX_DIGITS) return NULL;
    if (v) {
        v->s.p = start;  /* the number's text: a float is converted only where it is read */
        v->s.n = p - start;
        if (!is_int) v->kind = K_FLOAT;
        else if (digits > INT_DIGITS) v->kind = K_BIGINT;
        else { v->kind = K_INT; v->i = neg ? -acc : acc; }
    }
    return p;
}

static const char *value(Scan *sc, const char *p, Val *v, int depth);

static const char *skip_object(Scan *sc, const char *p, int depth, Val *v) {
    /* p is after '{' */
    const char *end = sc->end;
    if (depth > MAX_DEPTH) return NULL;
    p = ws(p, end);
    if (p < end && *p == '}') { if (v) v->kind = K_OBJ; return p + 1; }
    for (;;) {
        if (p >= end || *p != '"') return NULL;
        if (!(p = string(sc, p + 1, NULL))) return NULL;
        p = ws(p, end);
        if (p >= end || *p != ':') return NULL;
        if (!(p = value(sc, ws(p + 1, end), NULL, depth + 1))) return NULL;
        p = ws(p, end);
        if (p >= end) return NULL;
        if (*p == '}') break;
        if (*p != ',') return NULL;
        p = ws(p + 1, end);
    }
    if (v) v->kind = K_OBJ;
    return p + 1;
}

static const char *skip_array(Scan *sc, const char *p, int depth, Val *v) {
    const char *end = sc->end;
    if (depth > MAX_DEPTH) return NULL;
    p = ws(p, end);
    if (p < end && *p == ']') { if (v) v->kind = K_ARR; return p + 1; }
    for (;;) {
        if (!(p = value(sc, p, NULL, depth + 1))) return NULL;
        p = ws(p, end);
        if (p >= end) return NULL;
        if (*p == ']') break;
        if (*p != ',') return NULL;
        p = ws(p + 1, end);
    }
    if (v) v->kind = K_ARR;
    return p + 1;
}

static inline const char *literal(const char *p, const char *end, const char *word, int n, int kind, Val *v) {
    if (end - p < n || memcmp(p, word, n) != 0) return NULL;
    if (v) v->kind = kind;
    return p + n;
}

/* Any JSON value at p (whitespace already skipped); with `v`, what it is. */
static const char *value(Scan *sc, const char *p, Val *v, int depth) {
    const char *end = sc->end;
    if (p >= end) return NULL;
    switch (*p) {
    case '"': return string(sc, p + 1, v);
    case '{': return skip_object(sc, p + 1, depth, v);
    case '[': return skip_array(sc, p + 1, depth, v);
    case 't': return literal(p, end, "true", 4, K_TRUE, v);
    case 'f': return literal(p, end, "false", 5, K_FALSE, v);
    case 'n': return literal(p, end, "null", 4, K_NULL, v);
    default: return number(p, end, v);
    }
}

/* ---- the fields one span line holds ------------------------------------------------ */

/* Names the index reads, set once by configure() from exporter.format. */
enum {
    T_TRACE, T_SPAN, T_PARENT, T_START, T_END, T_NAME, T_STATUS, T_RESOURCE, T_ATTRS,
    S_CODE, S_MESSAGE, R_ATTRS, R_SERVICE,
    A_OI_KIND, A_OBS, A_MODEL, A_OI_MODEL, A_AGENT, A_AGENT_ID, A_OI_AGENT_ID, A_IN, A_OUT,
    A_PROJECT, A_TOOL, A_GENAI_TOOL, A_RUN, A_OUT_PASSED, A_SCORE, A_TASK, A_LABEL,
    A_COST,
    N_NAMES
};
static Str names[N_NAMES];
_Static_assert(N_NAMES <= 32, "find_name keeps the names of a length as the bits of a uint32_t");
static PyObject *names_owner;          /* keeps the names' bytes alive */
static Str status_codes[3];            /* code -> index 0, 1, 2 as exporter.format orders them */
static int error_code = -1;            /* the index of the error code */
static Str tool_kind;                  /* the span kind of a tool span */

#define TOP_FIRST T_TRACE
#define TOP_LAST T_ATTRS
#define ATTR_FIRST A_OI_KIND
#define ATTR_LAST A_COST

typedef struct {
    Val f[N_NAMES];      /* by name; kind K_ABSENT when missing */
    int status_obj;      /* the last "status" was an object */
    int resource_obj, rattrs_obj;
    int attrs_keys;      /* "attributes" was an object with this many keys (0: empty or not an object) */
} Line;

static inline int is_name(const Val *key, int which) {
    const Str *name = &names[which];
    Py_ssize_t n = key->s.n;
    return n == name->n && n && key->s.p[0] == name->p[0] && key->s.p[n - 1] == name->p[n - 1]
           && same_bytes(key->s.p, name->p, n);
}

/* The names of [first, last] by length, as bits (1 << name), lengths past 63 together at
 * 64: a key is compared only with the names as long as it, and most keys have none. Made
 * by configure(); N_NAMES fits the bits. */
#define LEN_SLOTS 65
static uint32_t top_by_len[LEN_SLOTS], attr_by_len[LEN_SLOTS], status_by_len[LEN_SLOTS];

static inline int find_name(const Val *key, const uint32_t *by_len) {
    uint32_t m = by_len[key->s.n < LEN_SLOTS - 1 ? key->s.n : LEN_SLOTS - 1];
    for (; m; m &= m - 1) {
        int i = __builtin_ctz(m);
        if (is_name(key, i)) return i;
    }
    return -1;
}

static void names_by_len(uint32_t *by_len, int first, int last) {
    memset(by_len, 0, LEN_SLOTS * sizeof *by_len);
    for (int i = first; i <= last; i++)
        by_len[names[i].n < LEN_SLOTS - 1 ? names[i].n : LEN_SLOTS - 1] |= (uint32_t)1 << i;
}

/* An object whose keys we look up: top level, status, resource, resource attributes,
 * attributes. Returns NULL on anything not certain (an escaped key included). */
static const char *fields(Scan *sc, const char *p, Line *ln, int level, int depth);

enum { LV_TOP, LV_STATUS, LV_RESOURCE, LV_RATTRS, LV_ATTRS };

static void reset(Line *ln, int first, int last) {
    for (int i = first; i <= last; i++) ln->f[i].kind = K_ABSENT;
}

static const char *fields(Scan *sc, const char *p, Line *ln, int level, int depth) {
    const char *end = sc->end;
    Val key;
    int keys = 0;
    p = ws(p, end);
    if (p < end && *p == '}') goto done_empty;
    for (;;) {
        if (p >= end || *p != '"') return NULL;
        if (!(p = string(sc, p + 1, &key))) return NULL;
        if (key.escaped) return NULL;
        keys++;
        p = ws(p, end);
        if (p >= end || *p != ':') return NULL;
        p = ws(p + 1, end);
        if (p >= end) return NULL;
        int which = -1;
        switch (level) {
        case LV_TOP: which = find_name(&key, top_by_len); break;
        case LV_STATUS: which = find_name(&key, status_by_len); break;
        case LV_RESOURCE: which = is_name(&key, R_ATTRS) ? R_ATTRS : -1; break;
        case LV_RATTRS: which = is_name(&key, R_SERVICE) ? R_SERVICE : -1; break;
        case LV_ATTRS: which = find_name(&key, attr_by_len); break;
        }
        /* a repeated key: the last one wins, as in orjson's dict */
        if (which == T_STATUS) {
            reset(ln, S_CODE, S_MESSAGE);
            ln->status_obj = *p == '{';
            p = ln->status_obj ? fields(sc, p + 1, ln, LV_STATUS, depth + 1) : value(sc, p, NULL, depth + 1);
        } else if (which == T_RESOURCE) {
            ln->rattrs_obj = 0;
            reset(ln, R_SERVICE, R_SERVICE);
            ln->resource_obj = *p == '{';
            p = ln->resource_obj ? fields(sc, p + 1, ln, LV_RESOURCE, depth + 1) : value(sc, p, NULL, depth + 1);
        } else if (which == R_ATTRS) {
            reset(ln, R_SERVICE, R_SERVICE);
            ln->rattrs_obj = *p == '{';
            p = ln->rattrs_obj ? fields(sc, p + 1, ln, LV_RATTRS, depth + 1) : value(sc, p, NULL, depth + 1);
        } else if (which == T_ATTRS) {
            reset(ln, ATTR_FIRST, ATTR_LAST);
            ln->attrs_keys = 0;
            p = *p == '{' ? fields(sc, p + 1, ln, LV_ATTRS, depth + 1) : value(sc, p, NULL, depth + 1);
        } else {
            Val *v = which >= 0 ? &ln->f[which] : NULL;
            p = *p == '"' ? string(sc, p + 1, v) : value(sc, p, v, depth + 1);  /* most values are strings */
        }
        if (!p) return NULL;
        p = ws(p, end);
        if (p >= end) return NULL;
        if (*p == '}') break;
        if (*p != ',') return NULL;
        p = ws(p + 1, end);
    }
    if (level == LV_ATTRS) ln->attrs_keys = keys;
    return p + 1;
done_empty:
    if (level == LV_ATTRS) ln->attrs_keys = 0;
    return p + 1;
}

/* ---- one span, as the rollups see it ------------------------------------------------- */

typedef struct {
    Str tid, sid, parent, start, end, name;
    int code_index;       /* 0..2: a known code; -1: code_str is the key; -2: not a string */
    Str code_str;
    int is_error, is_tool_error;
    int has_message; Str message;
    int has_service; Str service;
    int has_obs, has_attrs;
    int has_model; Str model;
    int has_agent; Str agent;
    int has_agent_id; Str agent_id;
    int has_in, has_out; long long in_tok, out_tok;
    PyObject *in_big, *out_big;    /* tokens beyond int64, from the callback */
    int has_project; Str project;
    int has_tool; Str tool;
    int has_run; Str run;
    int has_outcome;      /* marked as an outcome span; then: */
    int passed;           /* 1, 0, or -1 for unknown */
    int has_score; double score;
    int has_task; Str task;
    int has_label; Str label;
    int has_cost; double cost;    /* inference.llm.cost.total, when a number */
} Span;

static const Str EMPTY = {"", 0};

/* "x or ''" for a field that must end up a string: 1 ok, 0 not sure. */
static int str_or_empty(const Val *v, Str *out) {
    switch (v->kind) {
    case K_STR: *out = v->s; return 1;
    case K_ABSENT: case K_NULL: case K_FALSE: *out = EMPTY; return 1;
    default: return 0;
    }
}

/* A non-empty string, or nothing. */
static inline int nonempty(const Val *v, Str *out) {
    if (v->kind == K_STR && v->s.n) { *out = v->s; return 1; }
    return 0;
}

/* `a or b`, kept when it is a non-empty string: 1/0 as found, -1 not sure. */
static int either(const Val *a, const Val *b, Str *out) {
    switch (a->kind) {
    case K_STR:
        if (a->s.n) { *out = a->s; return 1; }
        break;
    case K_ABSENT: case K_NULL: case K_FALSE: break;
    case K_INT: if (a->i != 0) return 0; break;
    case K_TRUE: return 0;
    default: return -1;
    }
    return nonempty(b, out);
}

static int tokens(const Val *v, long long *out) {
    switch (v->kind) {
    case K_INT: *out = v->i; return 1;
    case K_TRUE: *out = 1; return 1;
    case K_FALSE: *out = 0; return 1;
    case K_BIGINT: return -1;
    default: return 0;
    }
}

static inline int str_eq(Str a, Str b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

/* A JSON number's text as a double, rounded as Python's float() rounds it: 0, or -1 not sure. */
static int to_double(Str s, double *out) {
    char tmp[MAX_DIGITS + 16], *stop;
    if (s.n >= (Py_ssize_t)sizeof tmp) return -1;
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = 0;
    double d = PyOS_string_to_double(tmp, &stop, NULL);
    if (d == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
    if (stop != tmp + s.n) return -1;
    *out = d;
    return 0;
}

/* An outcome span's fields (parse._outcome): 1, or 0 when the callback must decide. */
static int outcome_from_line(const Val *f, Span *s) {
    s->passed = f[A_OUT_PASSED].kind == K_TRUE ? 1 : f[A_OUT_PASSED].kind == K_FALSE ? 0 : -1;
    const Val *score = &f[A_SCORE];
    s->has_score = 0;
    if (score->kind == K_INT) {
        s->has_score = 1;
        s->score = (double)score->i;
    } else if (score->kind == K_FLOAT) {
        if (to_double(score->s, &s->score) < 0) return 0;
        s->has_score = 1;
    } else if (score->kind == K_BIGINT) {
        return 0;
    }
    s->has_task = nonempty(&f[A_TASK], &s->task);
    s->has_label = nonempty(&f[A_LABEL], &s->label);
    return 1;
}

/* The reported cost (parse._cost): a number, not a bool; 0, or -1 when the callback must decide. */
static int cost_from_line(const Val *v, Span *s) {
    if (v->kind == K_INT) {
        s->has_cost = 1;
        s->cost = (double)v->i;
    } else if (v->kind == K_FLOAT) {
        if (to_double(v->s, &s->cost) < 0) return -1;
        s->has_cost = 1;
    } else if (v->kind == K_BIGINT) {
        return -1;
    }
    return 0;
}

/* The Span of a line the scanner read: 1, or 0 when the callback must decide. */
static int span_from_line(const Line *ln, Span *s) {
    const Val *f = ln->f;
    if (f[T_TRACE].kind != K_STR || f[T_SPAN].kind != K_STR) return 0;
    s->tid = f[T_TRACE].s;
    s->sid = f[T_SPAN].s;
    if (!str_or_empty(&f[T_PARENT], &s->parent) || !str_or_empty(&f[T_START], &s->start)
        || !str_or_empty(&f[T_END], &s->end) || !str_or_empty(&f[T_NAME], &s->name)) return 0;
    s->code_index = -2;
    s->is_error = 0;
    s->has_message = 0;
    if (ln->status_obj && f[S_CODE].kind == K_STR) {
        s->code_index = -1;
        s->code_str = f[S_CODE].s;
        for (int i = 0; i < 3; i++) if (str_eq(f[S_CODE].s, status_codes[i])) s->code_index = i;
        if (s->code_index == error_code) {
            s->is_error = 1;
            s->has_message = 1;
            if (!str_or_empty(&f[S_MESSAGE], &s->message)) return 0;
        }
    }
    s->has_service = ln->resource_obj && ln->rattrs_obj && f[R_SERVICE].kind == K_STR;
    if (s->has_service) s->service = f[R_SERVICE].s;
    s->has_obs = f[A_OBS].kind != K_ABSENT;
    s->has_attrs = ln->attrs_keys > 0;
    s->is_tool_error = s->is_error && f[A_OI_KIND].kind == K_STR && str_eq(f[A_OI_KIND].s, tool_kind);
    s->in_big = s->out_big = NULL;
    s->has_model = s->has_agent = s->has_agent_id = s->has_in = s->has_out = 0;
    s->has_project = s->has_tool = s->has_run = s->has_outcome = 0;
    s->has_cost = 0;
    if (!s->has_attrs) return 1;
    if (cost_from_line(&f[A_COST], s) < 0) return 0;
    if ((s->has_model = either(&f[A_MODEL], &f[A_OI_MODEL], &s->model)) < 0) return 0;
    s->has_agent = nonempty(&f[A_AGENT], &s->agent);
    if ((s->has_agent_id = either(&f[A_AGENT_ID], &f[A_OI_AGENT_ID], &s->agent_id)) < 0) return 0;
    if ((s->has_in = tokens(&f[A_IN], &s->in_tok)) < 0) return 0;
    if ((s->has_out = tokens(&f[A_OUT], &s->out_tok)) < 0) return 0;
    s->has_project = nonempty(&f[A_PROJECT], &s->project);
    if ((s->has_tool = either(&f[A_TOOL], &f[A_GENAI_TOOL], &s->tool)) < 0) return 0;
    s->has_run = nonempty(&f[A_RUN], &s->run);
    s->has_outcome = f[A_OUT_PASSED].kind != K_ABSENT;
    return s->has_outcome ? outcome_from_line(f, s) : 1;
}

/* ---- per-trace rollups -------------------------------------------------------------- */

enum { SET_SERVICES, SET_MODELS, SET_AGENTS, SET_AGENT_IDS, SET_PROJECTS, SET_TOOLS, SET_RUNS, N_SETS };

/* A trace's tuple, in parse.py's P_* order. */
enum {
    P_TID, P_FIRST_OFF, P_N, P_START, P_END, P_ERR, P_TOOL_ERR, P_MISS_IDENT, P_MISSING, P_RAW,
    P_IN, P_OUT, P_PROJECT, P_ROOT, P_SERVICES, P_MODELS, P_AGENTS, P_AGENT_IDS, P_PROJECTS,
    P_TOOLS, P_RUNS, P_ERRORS, P_IDS, P_BLOB, P_OUTCOME, P_DURATION, P_COST, P_MODEL_TOKENS, P_COUNT
};
_Static_assert(P_SERVICES + SET_RUNS == P_RUNS, "the sets are in P_* order");

typedef struct {
    PyObject *tid;
    long long first_off, raw;
    Py_ssize_t n;
    Buf start, end;
    long err, tool_err, miss_ident;
    PyObject *sets[N_SETS];
    Str last[N_SETS];              /* the value last added (an interned str's bytes), to skip a repeat */
    PyObject *project;
    long long in_tok, out_tok;
    PyObject *in_big, *out_big;    /* the sums, once they leave int64 */
    int root;
    PyObject *errors;
    Buf blob;
    Buf ids;                       /* span and parent ids, back to back */
    Buf sid_at, pid_at;            /* Span-sized (offset, length) records into ids */
    int has_outcome;               /* the latest outcome span so far (parse.P_OUTCOME): */
    long long out_off;
    int out_passed, out_has_score, out_has_task, out_has_label;
    double out_score;
    Buf out_end, out_task, out_label;
    double cost;                   /* parse.P_COST */
    Buf mt_names;                  /* parse.P_MODEL_TOKENS: model names back to back ... */
    Buf mt_sums;                   /* ... and a ModelTokens per name, in first-seen order */
    const char *key;               /* the trace id's UTF-8, owned by tid */
    Py_ssize_t key_n;
    uint64_t hash;
} Trace;

/* One model's tokens in a trace (spans without a reported cost); its name is in mt_names. */
typedef struct {
    Py_ssize_t off, n;
    long long in_tok, out_tok;
    PyObject *in_big, *out_big;
} ModelTokens;

static void trace_free(Trace *t) {
    ModelTokens *mt = (ModelTokens *)t->mt_sums.p;
    for (Py_ssize_t i = 0, k = t->mt_sums.n / (Py_ssize_t)sizeof *mt; i < k; i++) {
        Py_XDECREF(mt[i].in_big);
        Py_XDECREF(mt[i].out_big);
    }
    PyMem_Free(t->mt_names.p);
    PyMem_Free(t->mt_sums.p);
    Py_XDECREF(t->tid);
    for (int i = 0; i < N_SETS; i++) Py_XDECREF(t->sets[i]);
    Py_XDECREF(t->project);
    Py_XDECREF(t->in_big);
    Py_XDECREF(t->out_big);
    Py_XDECREF(t->errors);
    PyMem_Free(t->start.p);
    PyMem_Free(t->end.p);
    PyMem_Free(t->blob.p);
    PyMem_Free(t->ids.p);
    PyMem_Free(t->sid_at.p);
    PyMem_Free(t->pid_at.p);
    PyMem_Free(t->out_end.p);
    PyMem_Free(t->out_task.p);
    PyMem_Free(t->out_label.p);
}

static inline PyObject *unicode(Str s) { return PyUnicode_DecodeUTF8(s.p, s.n, "strict"); }

static inline uint64_t hash_bytes(const char *p, Py_ssize_t n);

/* One str per distinct set value (service, model, agent, ... names) in a scan, so a name
 * that recurs in every trace is decoded and hashed once, not once a trace. */
typedef struct { uint64_t hash; PyObject *obj; Str s; } Interned;   /* s: obj's UTF-8 */
typedef struct { Interned *e; Py_ssize_t n, mask; } Strings;

static void strings_free(Strings *st) {
    for (Py_ssize_t i = 0; st->e && i <= st->mask; i++) Py_XDECREF(st->e[i].obj);
    PyMem_Free(st->e);
}

static int strings_grow(Strings *st) {
    Py_ssize_t size = st->e ? (st->mask + 1) * 2 : 64;
    Interned *e = PyMem_Calloc(size, sizeof *e);
    if (!e) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; st->e && i <= st->mask; i++) {
        if (!st->e[i].obj) continue;
        Py_ssize_t j = (Py_ssize_t)(st->e[i].hash & (uint64_t)(size - 1));
        while (e[j].obj) j = (j + 1) & (size - 1);
        e[j] = st->e[i];
    }
    PyMem_Free(st->e);
    st->e = e;
    st->mask = size - 1;
    return 0;
}

/* The str of `s` (borrowed: the table keeps it to the end of the scan) in *out; -1 on error. */
static int intern(Strings *st, Str s, Interned *out) {
    if (!st->e && strings_grow(st) < 0) return -1;
    uint64_t h = hash_bytes(s.p, s.n);
    Py_ssize_t j = (Py_ssize_t)(h & (uint64_t)st->mask);
    for (; st->e[j].obj; j = (j + 1) & st->mask) {
        const Interned *x = &st->e[j];
        if (x->hash == h && x->s.n == s.n && same_bytes(x->s.p, s.p, s.n)) { *out = *x; return 0; }
    }
    PyObject *u = unicode(s);
    if (!u) return -1;
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(u, &n);  /* s.p may be a line's arena or a callback's str */
    if (!p) { Py_DECREF(u); return -1; }
    st->e[j].hash = h;
    st->e[j].obj = u;
    st->e[j].s.p = p;
    st->e[j].s.n = n;
    *out = st->e[j];
    if (++st->n * 2 > st->mask + 1 && strings_grow(st) < 0) return -1;
    return 0;
}

static int set_add(Strings *st, Trace *t, int which, Str s) {
    const Str *last = &t->last[which];
    if (last->p && last->n == s.n && same_bytes(last->p, s.p, s.n)) return 0;
    Interned x;
    if (intern(st, s, &x) < 0) return -1;
    if (!t->sets[which] && !(t->sets[which] = PySet_New(NULL))) return -1;
    t->last[which] = x.s;
    return PySet_Add(t->sets[which], x.obj);
}

typedef struct { Py_ssize_t off, n; } Slice;

static int add_id(Trace *t, Buf *at, Str s) {
    Slice sl = {t->ids.n, s.n};
    if (buf_put(&t->ids, s.p, s.n) < 0) return -1;
    return buf_put(at, (const char *)&sl, sizeof sl);
}

static int str_cmp(const void *a, const void *b) {
    const Str *x = a, *y = b;
    Py_ssize_t m = x->n < y->n ? x->n : y->n;
    int c = m ? memcmp(x->p, y->p, m) : 0;
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* An id to sort: its first sixteen bytes as two big-endian words (zero padded), which order
 * almost every pair without a memcmp (span ids are sixteen hex digits). */
typedef struct { uint64_t w0, w1; const char *p; Py_ssize_t n; } Key;

static inline uint64_t be_word(const char *p, Py_ssize_t n) {
    uint64_t w = 0;
    if (n >= 8) {
        memcpy(&w, p, 8);
#if PY_LITTLE_ENDIAN
        w = __builtin_bswap64(w);
#endif
        return w;
    }
    for (Py_ssize_t i = 0; i < 8; i++) w = w << 8 | (i < n ? (unsigned char)p[i] : 0);
    return w;
}

static inline void key_set(Key *k, const char *p, Py_ssize_t n) {
    k->p = p;
    k->n = n;
    k->w0 = be_word(p, n);
    k->w1 = n > 8 ? be_word(p + 8, n - 8) : 0;
}

/* str_cmp's order: the words decide unless equal; equal words and both ids at most sixteen
 * bytes means one is the other plus zero bytes, so the shorter is first. */
static inline int key_cmp(const Key *a, const Key *b) {
    if (a->w0 != b->w0) return a->w0 < b->w0 ? -1 : 1;
    if (a->w1 != b->w1) return a->w1 < b->w1 ? -1 : 1;
    if (a->n <= 16 && b->n <= 16) return (a->n > b->n) - (a->n < b->n);
    Str x = {a->p, a->n}, y = {b->p, b->n};
    return str_cmp(&x, &y);
}

/* Sorts k[0..n) with tmp[0..n) as room: insertion sort on short runs, then merges (qsort's
 * callback and memcmp per comparison cost more than the sort itself). */
static void key_sort(Key *k, Key *tmp, Py_ssize_t n) {
    enum { RUN = 16 };
    for (Py_ssize_t lo = 0; lo < n; lo += RUN) {
        Py_ssize_t hi = lo + RUN < n ? lo + RUN : n;
        for (Py_ssize_t i = lo + 1; i < hi; i++) {
            Key x = k[i];
            Py_ssize_t j = i;
            while (j > lo && key_cmp(&k[j - 1], &x) > 0) { k[j] = k[j - 1]; j--; }
            k[j] = x;
        }
    }
    Key *from = k, *to = tmp;
    for (Py_ssize_t width = RUN; width < n; width *= 2) {
        for (Py_ssize_t lo = 0; lo < n; lo += 2 * width) {
            Py_ssize_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            Py_ssize_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) to[o++] = key_cmp(&from[j], &from[i]) < 0 ? from[j++] : from[i++];
            while (i < mid) to[o++] = from[i++];
            while (j < hi) to[o++] = from[j++];
        }
        Key *swap = from; from = to; to = swap;
    }
    if (from != k) memcpy(k, from, n * sizeof *k);
}

/* The distinct ids of `at`, sorted; returns how many. */
static Py_ssize_t unique_ids(Trace *t, Buf *at, Key *ids, Key *tmp) {
    Py_ssize_t n = at->n / (Py_ssize_t)sizeof(Slice), m = 0;
    const Slice *sl = (const Slice *)at->p;
    for (Py_ssize_t i = 0; i < n; i++) key_set(&ids[i], t->ids.p + sl[i].off, sl[i].n);
    key_sort(ids, tmp, n);
    for (Py_ssize_t i = 0; i < n; i++) if (!m || key_cmp(&ids[m - 1], &ids[i])) ids[m++] = ids[i];
    return m;
}

static int json_ids(Buf *out, const Key *ids, Py_ssize_t n) {
    Py_ssize_t room = 2;
    for (Py_ssize_t i = 0; i < n; i++) room += 6 * ids[i].n + 3;
    if (buf_reserve(out, room) < 0) return -1;
    char *o = out->p + out->n;
    *o++ = '[';
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i) *o++ = ',';
        o = put_json_str(o, ids[i].p, ids[i].n);
    }
    *o++ = ']';
    out->n = o - out->p;
    return 0;
}

/* `[[span ids], [parent ids]]` as the index stores them, and how many parents are not
 * spans of this batch. */
static PyObject *ids_json(Trace *t, Py_ssize_t *missing) {
    Py_ssize_t ns = t->sid_at.n / (Py_ssize_t)sizeof(Slice), np = t->pid_at.n / (Py_ssize_t)sizeof(Slice);
    Py_ssize_t most = ns > np ? ns : np;
    Key *sids = PyMem_Malloc((ns + np + most + 1) * sizeof(Key)), *pids = sids + ns, *tmp = pids + np;
    Buf out = {NULL, 0, 0};
    PyObject *r = NULL;
    if (!sids) return PyErr_NoMemory();
    ns = unique_ids(t, &t->sid_at, sids, tmp);
    np = unique_ids(t, &t->pid_at, pids, tmp);
    *missing = 0;
    for (Py_ssize_t i = 0, j = 0; i < np; i++) {  /* both sorted: one merge walk */
        while (j < ns && key_cmp(&sids[j], &pids[i]) < 0) j++;
        if (j == ns || key_cmp(&sids[j], &pids[i]) != 0) (*missing)++;
    }
    if (buf_put(&out, "[", 1) == 0 && json_ids(&out, sids, ns) == 0 && buf_put(&out, ",", 1) == 0
        && json_ids(&out, pids, np) == 0 && buf_put(&out, "]", 1) == 0)
        r = PyBytes_FromStringAndSize(out.p, out.n);
    PyMem_Free(out.p);
    PyMem_Free(sids);
    return r;
}

/* sum += v, moving to a Python int when int64 would overflow */
static int add_tokens(long long *sum, PyObject **big, long long v, PyObject *v_big) {
    long long fits;
    if (!*big && !v_big && !__builtin_add_overflow(*sum, v, &fits)) { *sum = fits; return 0; }
    if (!*big && !(*big = PyLong_FromLongLong(*sum))) return -1;
    PyObject *x = v_big ? (Py_INCREF(v_big), v_big) : PyLong_FromLongLong(v);
    if (!x) return -1;
    PyObject *r = PyNumber_Add(*big, x);
    Py_DECREF(x);
    if (!r) return -1;
    Py_SETREF(*big, r);
    return 0;
}

/* Add a span's tokens to its model's sums (parse._add_model_tokens); "" when it names none. */
static int add_model_tokens(Trace *t, const Span *s) {
    Str model = s->has_model ? s->model : EMPTY;
    ModelTokens *mt = (ModelTokens *)t->mt_sums.p, *e = NULL;
    Py_ssize_t k = t->mt_sums.n / (Py_ssize_t)sizeof *mt;
    for (Py_ssize_t i = 0; i < k && !e; i++)
        if (mt[i].n == model.n && memcmp(t->mt_names.p + mt[i].off, model.p, model.n) == 0) e = &mt[i];
    if (!e) {
        ModelTokens fresh = {t->mt_names.n, model.n, 0, 0, NULL, NULL};
        if (buf_put(&t->mt_names, model.p, model.n) < 0
            || buf_put(&t->mt_sums, (const char *)&fresh, sizeof fresh) < 0) return -1;
        e = (ModelTokens *)(t->mt_sums.p + t->mt_sums.n) - 1;
    }
    if (s->has_in && add_tokens(&e->in_tok, &e->in_big, s->in_tok, s->in_big) < 0) return -1;
    if (s->has_out && add_tokens(&e->out_tok, &e->out_big, s->out_tok, s->out_big) < 0) return -1;
    return 0;
}

/* parse.P_MODEL_TOKENS: {model: [input, output]}, or None when no span went there. */
static PyObject *model_tokens_dict(const Trace *t) {
    const ModelTokens *mt = (const ModelTokens *)t->mt_sums.p;
    Py_ssize_t k = t->mt_sums.n / (Py_ssize_t)sizeof *mt;
    if (!k) Py_RETURN_NONE;
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *name = PyUnicode_DecodeUTF8(t->mt_names.p ? t->mt_names.p + mt[i].off : "", mt[i].n, "strict");
        PyObject *pair = Py_BuildValue(
            "[NN]", mt[i].in_big ? (Py_INCREF(mt[i].in_big), mt[i].in_big) : PyLong_FromLongLong(mt[i].in_tok),
            mt[i].out_big ? (Py_INCREF(mt[i].out_big), mt[i].out_big) : PyLong_FromLongLong(mt[i].out_tok));
        int rc = name && pair ? PyDict_SetItem(d, name, pair) : -1;
        Py_XDECREF(name);
        Py_XDECREF(pair);
        if (rc < 0) { Py_DECREF(d); return NULL; }
    }
    return d;
}

/* Keep `s`'s outcome when it is the trace's latest: the greatest end time, ties to the later line. */
static int keep_outcome(Trace *t, const Span *s, long long off) {
    if (t->has_outcome) {
        Str cur = {t->out_end.p, t->out_end.n};
        if (str_cmp(&s->end, &cur) < 0) return 0;
    }
    t->has_outcome = 1;
    t->out_off = off;
    t->out_passed = s->passed;
    t->out_has_score = s->has_score;
    t->out_score = s->score;
    t->out_has_task = s->has_task;
    t->out_has_label = s->has_label;
    t->out_end.n = t->out_task.n = t->out_label.n = 0;
    if (buf_put(&t->out_end, s->end.p, s->end.n) < 0) return -1;
    if (s->has_task && buf_put(&t->out_task, s->task.p, s->task.n) < 0) return -1;
    if (s->has_label && buf_put(&t->out_label, s->label.p, s->label.n) < 0) return -1;
    return 0;
}

static int keep_bound(Buf *b, Str s, int less) {
    /* `if not cur or s < cur` (start) / `if not cur or s > cur` (end), as Python compares str:
     * code point order, which is UTF-8 byte order */
    if (b->n) {
        Str cur = {b->p, b->n};
        int c = str_cmp(&s, &cur);
        if (less ? c >= 0 : c <= 0) return 0;
    }
    b->n = 0;
    return buf_put(b, s.p, s.n);
}

/* A span id seen in this range: its trace's position and where its bytes are in that
 * trace's `ids`, so a second line with the same (trace id, span id) is found and skipped. */
typedef struct { uint64_t hash; Py_ssize_t trace, off, n; } Seen;

typedef struct {
    Trace *traces;
    Py_ssize_t n, cap;
    Py_ssize_t *slots;    /* open addressing: trace position + 1, 0 when free */
    Py_ssize_t mask;
    long long fileno;
    Seen *seen;           /* open addressing over span ids: hash 0 marks a free slot */
    Py_ssize_t seen_n, seen_mask;
    Strings strings;
} Traces;

static inline uint64_t hash_bytes(const char *p, Py_ssize_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    while (n--) h = (h ^ (unsigned char)*p++) * 0x100000001B3ULL;
    return h ^ (h >> 29);
}

static int table_grow(Traces *ts) {
    Py_ssize_t size = ts->mask ? (ts->mask + 1) * 2 : 1024;
    Py_ssize_t *slots = PyMem_Calloc(size, sizeof(Py_ssize_t));
    if (!slots) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < ts->n; i++) {
        Py_ssize_t j = (Py_ssize_t)(ts->traces[i].hash & (uint64_t)(size - 1));
        while (slots[j]) j = (j + 1) & (size - 1);
        slots[j] = i + 1;
    }
    PyMem_Free(ts->slots);
    ts->slots = slots;
    ts->mask = size - 1;
    return 0;
}

/* The trace `tid` names, made on its first span (in first-appearance order). */
static Trace *trace_for(Traces *ts, Str tid, long long off) {
    uint64_t h = hash_bytes(tid.p, tid.n);
    Py_ssize_t j = (Py_ssize_t)(h & (uint64_t)ts->mask);
    for (; ts->slots[j]; j = (j + 1) & ts->mask) {
        Trace *t = &ts->traces[ts->slots[j] - 1];
        if (t->hash == h && t->key_n == tid.n && memcmp(t->key, tid.p, tid.n) == 0) return t;
    }
    if (ts->n == ts->cap) {
        Py_ssize_t cap = ts->cap ? ts->cap * 2 : 256;
        Trace *mem = PyMem_Realloc(ts->traces, cap * sizeof(Trace));
        if (!mem) { PyErr_NoMemory(); return NULL; }
        ts->traces = mem;
        ts->cap = cap;
    }
    Trace *t = &ts->traces[ts->n];
    memset(t, 0, sizeof *t);
    if (!(t->tid = unicode(tid))) return NULL;
    if (!(t->key = PyUnicode_AsUTF8AndSize(t->tid, &t->key_n))) { Py_CLEAR(t->tid); return NULL; }
    t->hash = h;
    t->first_off = off;
    ts->slots[j] = ++ts->n;
    if (ts->n * 2 > ts->mask + 1 && table_grow(ts) < 0) return NULL;
    return &ts->traces[ts->n - 1];
}

static int seen_grow(Traces *ts) {
    Py_ssize_t size = ts->seen_mask ? (ts->seen_mask + 1) * 2 : 4096;
    Seen *slots = PyMem_Calloc(size, sizeof(Seen));
    if (!slots) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; ts->seen && i <= ts->seen_mask; i++) {
        if (!ts->seen[i].hash) continue;
        Py_ssize_t j = (Py_ssize_t)(ts->seen[i].hash & (uint64_t)(size - 1));
        while (slots[j].hash) j = (j + 1) & (size - 1);
        slots[j] = ts->seen[i];
    }
    PyMem_Free(ts->seen);
    ts->seen = slots;
    ts->seen_mask = size - 1;
    return 0;
}

/* 1 when trace `t` already has span id `sid` in this range (a duplicate line), else 0 with
 * `*slot` the free slot where seen_record puts it and `*hash` its hash. */
static int seen_find(const Traces *ts, const Trace *t, Str sid, Py_ssize_t *slot, uint64_t *hash) {
    Py_ssize_t ti = t - ts->traces;
    uint64_t h = (hash_bytes(sid.p, sid.n) ^ (t->hash * 0x9E3779B97F4A7C15ULL)) | 1;
    Py_ssize_t j = (Py_ssize_t)(h & (uint64_t)ts->seen_mask);
    for (; ts->seen[j].hash; j = (j + 1) & ts->seen_mask) {
        const Seen *e = &ts->seen[j];
        if (e->hash == h && e->trace == ti && e->n == sid.n && memcmp(t->ids.p + e->off, sid.p, sid.n) == 0)
            return 1;
    }
    *slot = j;
    *hash = h;
    return 0;
}

/* Records the id seen_find did not find, at its slot (the table unchanged since); its bytes
 * must be the last id added to `t`. */
static int seen_record(Traces *ts, const Trace *t, Py_ssize_t n, Py_ssize_t j, uint64_t h) {
    ts->seen[j].hash = h;
    ts->seen[j].trace = t - ts->traces;
    ts->seen[j].off = t->ids.n - n;
    ts->seen[j].n = n;
    if (++ts->seen_n * 2 > ts->seen_mask + 1 && seen_grow(ts) < 0) return -1;
    return 0;
}

/* Fold one span into its trace; 1 (and nothing folded) for a second line of the same span. */
static int absorb(Traces *ts, const Span *s, long long off, Py_ssize_t length) {
    Trace *t = trace_for(ts, s->tid, off);
    if (!t) return -1;
    Py_ssize_t slot;
    uint64_t h;
    if (seen_find(ts, t, s->sid, &slot, &h)) return 1;
    if (add_id(t, &t->sid_at, s->sid) < 0) return -1;
    if (seen_record(ts, t, s->sid.n, slot, h) < 0) return -1;
    if (s->parent.n) {
        if (add_id(t, &t->pid_at, s->parent) < 0) return -1;
    } else {
        t->root = 1;
    }
    if (keep_bound(&t->start, s->start, 1) < 0) return -1;
    if (keep_bound(&t->end, s->end, 0) < 0) return -1;
    if (s->is_error) {
        t->err++;
        if (!t->errors && !(t->errors = PyList_New(0))) return -1;
        PyObject *e = Py_BuildValue("(s#s#n)", s->name.p, s->name.n, s->message.p, s->message.n, t->n);
        if (!e) return -1;
        int rc = PyList_Append(t->errors, e);
        Py_DECREF(e);
        if (rc < 0) return -1;
        if (s->is_tool_error) t->tool_err++;
    }
    if (s->has_service && set_add(&ts->strings, t, SET_SERVICES, s->service) < 0) return -1;
    if (s->has_attrs) {
        if (s->has_model && set_add(&ts->strings, t, SET_MODELS, s->model) < 0) return -1;
        if (s->has_agent && set_add(&ts->strings, t, SET_AGENTS, s->agent) < 0) return -1;
        if (s->has_agent_id) {
            if (set_add(&ts->strings, t, SET_AGENT_IDS, s->agent_id) < 0) return -1;
        } else if (!s->has_agent) {
            t->miss_ident++;
        }
        if (s->has_in && add_tokens(&t->in_tok, &t->in_big, s->in_tok, s->in_big) < 0) return -1;
        if (s->has_out && add_tokens(&t->out_tok, &t->out_big, s->out_tok, s->out_big) < 0) return -1;
        if (s->has_project) {
            if (set_add(&ts->strings, t, SET_PROJECTS, s->project) < 0) return -1;
            if (!t->project) {
                Interned x;
                if (intern(&ts->strings, s->project, &x) < 0) return -1;
                Py_INCREF(x.obj);
                t->project = x.obj;
            }
        }
        if (s->has_tool && set_add(&ts->strings, t, SET_TOOLS, s->tool) < 0) return -1;
        if (s->has_run && set_add(&ts->strings, t, SET_RUNS, s->run) < 0) return -1;
        if (s->has_outcome && keep_outcome(t, s, off) < 0) return -1;
        if (s->has_cost) t->cost += s->cost;
        else if ((s->has_in || s->has_out) && add_model_tokens(t, s) < 0) return -1;
    } else {
        t->miss_ident++;
    }
    /* the span's entry: [fileno,off,length,"sid","parent","name",code,message], in one
     * reservation of the most it can take */
    Buf *b = &t->blob;
    Py_ssize_t code_n = s->code_index == -1 ? s->code_str.n : 0, msg_n = s->has_message ? s->message.n : 0;
    if (buf_reserve(b, 4 * INT_ROOM + 16 + 6 * (s->sid.n + s->parent.n + s->name.n + code_n + msg_n) + 10) < 0)
        return -1;
    char *o = b->p + b->n;
    *o++ = '[';
    o = put_int(o, ts->fileno);
    *o++ = ',';
    o = put_int(o, off);
    *o++ = ',';
    o = put_int(o, length);
    *o++ = ',';
    o = put_json_str(o, s->sid.p, s->sid.n);
    *o++ = ',';
    o = put_json_str(o, s->parent.p, s->parent.n);
    *o++ = ',';
    o = put_json_str(o, s->name.p, s->name.n);
    *o++ = ',';
    if (s->code_index >= 0) o = put_int(o, s->code_index);
    else if (s->code_index == -1) o = put_json_str(o, s->code_str.p, s->code_str.n);
    else { memcpy(o, "\"\"", 2); o += 2; }
    *o++ = ',';
    if (s->has_message) o = put_json_str(o, s->message.p, s->message.n);
    else { memcpy(o, "null", 4); o += 4; }
    memcpy(o, "],", 2);
    b->n = o + 2 - b->p;
    t->n++;
    t->raw += length;
    return 0;
}

/* ---- the callback's answer ---------------------------------------------------------- */

/* A str as a Str (borrowed from the object); None gives has = 0. */
static int tuple_str(PyObject *o, Str *s, int *has) {
    if (o == Py_None) { if (has) *has = 0; else *s = EMPTY; return 0; }
    if (has) *has = 1;
    const char *p = PyUnicode_AsUTF8AndSize(o, &s->n);
    if (!p) return -1;
    s->p = p;
    return 0;
}

static int tuple_tokens(PyObject *o, int *has, long long *v, PyObject **big) {
    *has = o != Py_None;
    *big = NULL;
    if (!*has) return 0;
    int overflow;
    *v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) { *big = o; return 0; }
    return (*v == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* Fills `s` from parse.normalize_line's tuple (see its docstring for the order). */
static int tuple_flag(PyObject *o, int *flag) {
    return (*flag = PyObject_IsTrue(o)) < 0 ? -1 : 0;
}

static int span_from_tuple(PyObject *tup, Span *s) {
    if (!PyTuple_Check(tup) || PyTuple_GET_SIZE(tup) != 23) {
        PyErr_SetString(PyExc_TypeError, "normalize_line must return a str or a 23-tuple");
        return -1;
    }
    memset(s, 0, sizeof *s);
    PyObject **it = &PyTuple_GET_ITEM(tup, 0);
    if (tuple_str(it[0], &s->tid, NULL) < 0 || tuple_str(it[1], &s->sid, NULL) < 0
        || tuple_str(it[2], &s->parent, NULL) < 0 || tuple_str(it[3], &s->start, NULL) < 0
        || tuple_str(it[4], &s->end, NULL) < 0 || tuple_str(it[5], &s->name, NULL) < 0) return -1;
    if (PyLong_Check(it[6])) {
        long code = PyLong_AsLong(it[6]);
        if (code < 0 || code > 2) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a status code index is 0, 1 or 2");
            return -1;
        }
        s->code_index = (int)code;
    } else {
        int has;
        if (tuple_str(it[6], &s->code_str, &has) < 0) return -1;
        s->code_index = has && s->code_str.n ? -1 : -2;
    }
    if (tuple_flag(it[7], &s->is_error) < 0 || tuple_flag(it[8], &s->is_tool_error) < 0) return -1;
    if (tuple_str(it[9], &s->message, &s->has_message) < 0) return -1;
    if (s->is_error != s->has_message) {
        PyErr_SetString(PyExc_ValueError, "an error span has a message (a str), any other None");
        return -1;
    }
    if (tuple_str(it[10], &s->service, &s->has_service) < 0) return -1;
    if (tuple_flag(it[11], &s->has_obs) < 0 || tuple_flag(it[12], &s->has_attrs) < 0) return -1;
    if (tuple_str(it[13], &s->model, &s->has_model) < 0 || tuple_str(it[14], &s->agent, &s->has_agent) < 0
        || tuple_str(it[15], &s->agent_id, &s->has_agent_id) < 0) return -1;
    if (tuple_tokens(it[16], &s->has_in, &s->in_tok, &s->in_big) < 0
        || tuple_tokens(it[17], &s->has_out, &s->out_tok, &s->out_big) < 0) return -1;
    if (tuple_str(it[18], &s->project, &s->has_project) < 0 || tuple_str(it[19], &s->tool, &s->has_tool) < 0
        || tuple_str(it[20], &s->run, &s->has_run) < 0) return -1;
    s->has_cost = it[22] != Py_None;
    if (s->has_cost && (s->cost = PyFloat_AsDouble(it[22])) == -1.0 && PyErr_Occurred()) return -1;
    s->has_outcome = it[21] != Py_None;
    if (!s->has_outcome) return 0;
    if (!PyTuple_Check(it[21]) || PyTuple_GET_SIZE(it[21]) != 4) {
        PyErr_SetString(PyExc_TypeError, "an outcome is None or a 4-tuple");
        return -1;
    }
    PyObject **o = &PyTuple_GET_ITEM(it[21], 0);
    s->passed = o[0] == Py_True ? 1 : o[0] == Py_False ? 0 : -1;
    s->has_score = o[1] != Py_None;
    if (s->has_score && (s->score = PyFloat_AsDouble(o[1])) == -1.0 && PyErr_Occurred()) return -1;
    if (tuple_str(o[2], &s->task, &s->has_task) < 0 || tuple_str(o[3], &s->label, &s->has_label) < 0) return -1;
    return 0;
}

static inline PyObject *str_or_none(int has, const Buf *b) {
    if (!has) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(b->p ? b->p : "", b->n, "strict");
}

/* A canonical "YYYY-MM-DDTHH:MM:SS.fffffffffZ", the shape parse._ns reads the quick way, as
 * seconds since the epoch and nanoseconds: 1, or 0 when parse.duration_ms must decide (any
 * other shape, or a field out of range, which Python's datetime would reject). */
static int canonical_time(Str s, long long *secs, long long *ns) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddddddddZ";
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (s.n != 30) return 0;
    for (int i = 0; i < 30; i++) {
        char c = s.p[i];
        if (shape[i] == 'd' ? (c < '0' || c > '9') : c != shape[i]) return 0;
    }
#define D2(i) ((s.p[i] - '0') * 10 + (s.p[(i) + 1] - '0'))
    int y = D2(0) * 100 + D2(2), m = D2(5), d = D2(8), hh = D2(11), mi = D2(14), ss = D2(17);
#undef D2
    if (y < 1 || m < 1 || m > 12 || d < 1 || hh > 23 || mi > 59 || ss > 59) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap)) return 0;
    /* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil);
     * y >= 1, so no negative era */
    long long yy = y - (m <= 2), era = yy / 400, yoe = yy - era * 400;
    long long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    long long days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    *secs = days * 86400 + hh * 3600 + mi * 60 + ss;
    *ns = 0;
    for (int i = 20; i < 29; i++) *ns = *ns * 10 + (s.p[i] - '0');
    return 1;
}

/* parse.P_DURATION, parse.duration_ms(start, end): computed here for canonical times (the
 * same integers, and the same rounding of their difference to a double, as Python's), else
 * by calling it. */
static PyObject *duration(const Trace *t, PyObject *duration_fn, PyObject *start, PyObject *end) {
    long long s0, n0, s1, n1;
    Str a = {t->start.p, t->start.n}, b = {t->end.p, t->end.n};
    if (canonical_time(a, &s0, &n0) && canonical_time(b, &s1, &n1)) {
        long long ds = s1 - s0;
        if (ds < 9000000000LL && ds > -9000000000LL)  /* ds * 10**9 fits in int64 */
            return PyFloat_FromDouble((double)(ds * 1000000000LL + (n1 - n0)) / 1e6);
    }
    return PyObject_CallFunctionObjArgs(duration_fn, start, end, NULL);
}

/* parse.P_OUTCOME: (end, offset, passed, score, task id, label), or None. */
static PyObject *outcome_tuple(const Trace *t) {
    if (!t->has_outcome) Py_RETURN_NONE;
    PyObject *passed = t->out_passed == 1 ? Py_True : t->out_passed == 0 ? Py_False : Py_None;
    PyObject *score = t->out_has_score ? PyFloat_FromDouble(t->out_score) : (Py_INCREF(Py_None), Py_None);
    return Py_BuildValue("(s#LONNN)", t->out_end.p ? t->out_end.p : "", t->out_end.n, t->out_off, passed,
                         score, str_or_none(t->out_has_task, &t->out_task),
                         str_or_none(t->out_has_label, &t->out_label));
}

/* ---- the module's functions --------------------------------------------------------- */

static PyObject *scan(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data;
    long long fileno, base;
    PyObject *fallback, *duration_fn;
    Py_ssize_t max_bad;
    if (!PyArg_ParseTuple(args, "y*LLOnO", &data, &fileno, &base, &fallback, &max_bad, &duration_fn)) return NULL;
    if (error_code < 0) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_RuntimeError, "indexer._scan.configure() was not called");
        return NULL;
    }
    const char *buf = data.buf;
    Py_ssize_t size = data.len, cut = 0;
    for (Py_ssize_t i = size; i > 0; i--) if (buf[i - 1] == '\n') { cut = i; break; }

    Traces ts = {NULL, 0, 0, NULL, 0, fileno, NULL, 0, 0, {NULL, 0, 0}};
    PyObject *bad = PyList_New(0), *result = NULL, *out = NULL;
    Scan sc = {NULL, NULL, 0, 0};
    Py_ssize_t lines = 0, spans = 0, bad_count = 0, unprojected = 0, duplicates = 0;
    if (!bad || table_grow(&ts) < 0 || seen_grow(&ts) < 0) goto fail;

    const char *at = buf, *stop = buf + cut;
    while (at < stop) {
        /* Read the object first and look for the newline only when that fails: a good line
         * ends at its closing brace (plus blanks), and a newline never passes inside one
         * (a raw control byte ends the scan). */
        const char *line = at, *nl = NULL;
        long long off = base + (at - buf);
        Line ln;
        Span s;
        int sure = 0;
        if (*line == '\n') { at++; continue; }
        lines++;
        sc.end = stop;
        sc.used = 0;
        if (!sc.arena) sc.room = stop - line;
        memset(&ln, 0, sizeof ln);
        const char *p = ws(line, stop);
        if (p < stop && *p == '{' && (p = fields(&sc, p + 1, &ln, LV_TOP, 1)) != NULL) {
            p = ws(p, stop);
            if (p < stop && *p == '\n') {
                nl = p;
                sure = span_from_line(&ln, &s);
            }
        }
        if (!nl) nl = memchr(line, '\n', stop - line);
        Py_ssize_t length = nl - line;
        at = nl + 1;
        if (sure) {
            int rc = absorb(&ts, &s, off, length);
            if (rc < 0) goto fail;
            if (rc) { duplicates++; continue; }
            if (!s.has_obs) unprojected++;
            spans++;
            continue;
        }
        PyObject *said = PyObject_CallFunction(fallback, "y#", line, length);
        if (!said) goto fail;
        if (PyUnicode_Check(said)) {
            bad_count++;
            if (PyList_GET_SIZE(bad) < max_bad) {
                PyObject *item = Py_BuildValue("(LO)", off, said);
                if (!item || PyList_Append(bad, item) < 0) { Py_XDECREF(item); Py_DECREF(said); goto fail; }
                Py_DECREF(item);
            }
            Py_DECREF(said);
            continue;
        }
        int rc = span_from_tuple(said, &s);
        if (rc == 0) rc = absorb(&ts, &s, off, length);
        Py_DECREF(said);
        if (rc < 0) goto fail;
        if (rc) { duplicates++; continue; }
        if (!s.has_obs) unprojected++;
        spans++;
    }

    out = PyList_New(ts.n);
    if (!out) goto fail;
    for (Py_ssize_t i = 0; i < ts.n; i++) {
        Trace *t = &ts.traces[i];
        PyObject *sets[N_SETS];
        Py_ssize_t missing = 0;
        PyObject *ids = ids_json(t, &missing);
        if (!ids) goto fail;
        int k;
        for (k = 0; k < N_SETS; k++) {
            sets[k] = t->sets[k] ? (Py_INCREF(t->sets[k]), t->sets[k]) : PySet_New(NULL);
            if (!sets[k]) break;
        }
        if (k < N_SETS) { while (k--) Py_DECREF(sets[k]); Py_DECREF(ids); goto fail; }
        /* the order of parse.py's P_* positions; each item goes in as it is made, and a NULL
         * among them (an error) fails the whole tuple */
        PyObject *item = PyTuple_New(P_COUNT);
        if (!item) { for (k = 0; k < N_SETS; k++) Py_DECREF(sets[k]); Py_DECREF(ids); goto fail; }
        PyObject **it = &PyTuple_GET_ITEM(item, 0);
        Py_INCREF(t->tid);
        it[P_TID] = t->tid;
        it[P_FIRST_OFF] = PyLong_FromLongLong(t->first_off);
        it[P_N] = PyLong_FromSsize_t(t->n);
        it[P_START] = PyUnicode_DecodeUTF8(t->start.p ? t->start.p : "", t->start.n, NULL);
        it[P_END] = PyUnicode_DecodeUTF8(t->end.p ? t->end.p : "", t->end.n, NULL);
        it[P_ERR] = PyLong_FromLong(t->err);
        it[P_TOOL_ERR] = PyLong_FromLong(t->tool_err);
        it[P_MISS_IDENT] = PyLong_FromLong(t->miss_ident);
        it[P_MISSING] = PyLong_FromSsize_t(missing);
        it[P_RAW] = PyLong_FromLongLong(t->raw);
        it[P_IN] = t->in_big ? (Py_INCREF(t->in_big), t->in_big) : PyLong_FromLongLong(t->in_tok);
        it[P_OUT] = t->out_big ? (Py_INCREF(t->out_big), t->out_big) : PyLong_FromLongLong(t->out_tok);
        it[P_PROJECT] = t->project ? t->project : Py_None;
        Py_INCREF(it[P_PROJECT]);
        it[P_ROOT] = t->root ? Py_True : Py_False;
        Py_INCREF(it[P_ROOT]);
        for (k = 0; k < N_SETS; k++) it[P_SERVICES + k] = sets[k];   /* SET_* are in P_* order */
        it[P_ERRORS] = t->errors ? (Py_INCREF(t->errors), t->errors) : PyList_New(0);
        it[P_IDS] = ids;
        it[P_BLOB] = PyBytes_FromStringAndSize(t->blob.p ? t->blob.p : "", t->blob.n);
        it[P_OUTCOME] = outcome_tuple(t);
        it[P_DURATION] = PyErr_Occurred() ? NULL : duration(t, duration_fn, it[P_START], it[P_END]);
        it[P_COST] = PyFloat_FromDouble(t->cost);
        it[P_MODEL_TOKENS] = model_tokens_dict(t);
        for (k = 0; k < P_COUNT && it[k]; k++) {}
        if (k < P_COUNT) { Py_DECREF(item); goto fail; }
        PyList_SET_ITEM(out, i, item);
    }
    result = Py_BuildValue("(nnnnnNNn)", lines, spans, bad_count, unprojected, cut, bad, out, duplicates);
    bad = out = NULL;
fail:
    Py_XDECREF(bad);
    Py_XDECREF(out);
    for (Py_ssize_t i = 0; i < ts.n; i++) trace_free(&ts.traces[i]);
    PyMem_Free(ts.traces);
    PyMem_Free(ts.slots);
    PyMem_Free(ts.seen);
    strings_free(&ts.strings);
    PyMem_Free(sc.arena);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *configure(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *keys, *codes, *owner;
    Py_ssize_t error_at;
    const char *tool;
    Py_ssize_t tool_n;
    if (!PyArg_ParseTuple(args, "O!O!ns#", &PyTuple_Type, &keys, &PyTuple_Type, &codes, &error_at, &tool, &tool_n))
        return NULL;
    if (PyTuple_GET_SIZE(keys) != N_NAMES || PyTuple_GET_SIZE(codes) != 3 || error_at < 0 || error_at > 2) {
        PyErr_Format(PyExc_ValueError, "configure() takes %d key names and 3 status codes", N_NAMES);
        return NULL;
    }
    /* one bytes object per name, owned by a tuple this module keeps */
    owner = PyTuple_New(N_NAMES + 4);
    if (!owner) return NULL;
    for (Py_ssize_t i = 0; i < N_NAMES + 4; i++) {
        PyObject *src = i < N_NAMES ? PyTuple_GET_ITEM(keys, i)
                      : i < N_NAMES + 3 ? PyTuple_GET_ITEM(codes, i - N_NAMES) : NULL;
        PyObject *b = src ? PyUnicode_AsUTF8String(src) : PyBytes_FromStringAndSize(tool, tool_n);
        if (!b) { Py_DECREF(owner); return NULL; }
        PyTuple_SET_ITEM(owner, i, b);
    }
    for (int i = 0; i < N_NAMES; i++) {
        PyObject *b = PyTuple_GET_ITEM(owner, i);
        names[i].p = PyBytes_AS_STRING(b);
        names[i].n = PyBytes_GET_SIZE(b);
    }
    names_by_len(top_by_len, TOP_FIRST, TOP_LAST);
    names_by_len(status_by_len, S_CODE, S_MESSAGE);
    names_by_len(attr_by_len, ATTR_FIRST, ATTR_LAST);
    for (int i = 0; i < 3; i++) {
        PyObject *b = PyTuple_GET_ITEM(owner, N_NAMES + i);
        status_codes[i].p = PyBytes_AS_STRING(b);
        status_codes[i].n = PyBytes_GET_SIZE(b);
    }
    PyObject *b = PyTuple_GET_ITEM(owner, N_NAMES + 3);
    tool_kind.p = PyBytes_AS_STRING(b);
    tool_kind.n = PyBytes_GET_SIZE(b);
    Py_XSETREF(names_owner, owner);
    error_code = (int)error_at;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(keys, status_codes, error_index, tool_kind): the names scan() reads."},
    {"scan", scan, METH_VARARGS,
     "scan(data, fileno, base, fallback, max_bad, duration) -> (lines, spans, bad_count, unprojected, cut, bad,\n"
     "traces, duplicates)\n"
     "traces: one tuple per trace in first-appearance order, fields as parse.py's P_*; duration(start, end)\n"
     "gives P_DURATION where the times are not canonical."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "indexer._scan",
    "Compiled span-line scanner for indexer.parse.", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }

/* opencws.backend._intake: the intake's hot path in one compiled pass per body (driven by
 * opencws.backend.compiled_intake).
 *
 * What it accepts: a SUBSET of what the Python hot path (`intake._accept_plain`, the strict cut family of
 * opencws.schema.structs) accepts. Each JSON line (or the body's one object) is a bare CWS event or the
 * agent's envelope around one; it is parsed and checked against tables built from the schema
 * (`compiled_intake.schema_nodes`), and its row of the events table is written in RowBinary at once. Anything
 * not plainly valid in this narrower sense makes the whole body bail (None): an escape in a key, an
 * envelope field or a string a column holds (columns are then the raw bytes; escapes elsewhere are checked
 * and the text stored as received), a `\u` escape of a surrogate, a number that is not a plain Int64
 * integer, null for a typed field, an unknown or duplicate key, a missing required field, invalid UTF-8 or a
 * control character, a date-time outside `structs._DATE_TIME` or outside the days RowBinary's Date holds
 * (1970..2149), free-form values nested deeper than the limit (at most 256), an envelope field too long...
 * The caller then takes the Python path, which answers exactly as before (and gives the reasons of any
 * rejection). What it accepts, it stores byte for byte as the Python path does
 * (`tests/backend/test_compiled_intake.py`).
 *
 * The text cut out of a row's event is its `process.ancestors`, with its `process.parent` when that comes right
 * before them (`intake._parent_before`); the batch's context keys are asked of Python once per (lineage, day,
 * parent).
 *
 * Texts that repeat are checked once: `process.ancestors` (three quarters of an event's bytes, the same in
 * every event of a lineage) is looked up by memcmp in a registry of texts Python's `Lineages.find` checked (a
 * text not seen yet is scanned to its end and handed to Python once: the `learn` callback); the objects of
 * `cached` properties (a process's parent and credentials) in a registry of texts this pass checked, with
 * the values the row needs of them.
 *
 * Concerns, in order: the schema tables, the ancestors registry, the objects registry, the scanner
 * (strings, numbers, free-form values), the date-times, the document parser (event, envelope), the
 * RowBinary writer, the lazy Row type the detection engine reads, the batch driver, the Parser type. The GIL
 * is held throughout (a Python callback may let another thread in: what a row needs of a registry entry is
 * held by reference first); every read is bounds-checked; recursion is bounded by the schema's depth and the
 * free-form limit.
 */

#define _GNU_SOURCE /* memmem */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ---- the schema tables ------------------------------------------------------------------------------ */

enum { K_STRING = 1, K_INT, K_BOOL, K_DATE, K_OBJECT, K_ARRAY, K_ANY, K_ANCESTORS };

/* The values the row needs, by their path in the event (the tables name the property holding each). */
enum {
    C_EVT_NAME, C_EVT_OUTCOME, C_DATE, C_P_USER, C_P_COMM, C_P_EXE_PATH, C_P_EXE_NAME, C_CRED_USER,
    C_PARENT_EXE_PATH, C_P_CONTAINER, C_E_CONTAINER, C_F_PATH, C_F_NAME, C_DEST_PATH, C_P_PID, C_P_PPID,
    C_P_UID, C_CRED_UID, C_CRED, C_PARENT, C_ANCESTORS, NCAPS
};
static const char *const CAP_PATHS[NCAPS] = {
    "evt.name", "evt.outcome", "date", "process.user", "process.comm", "process.executable.path",
    "process.executable.name", "process.credentials.user", "process.parent.executable.path",
    "process.container.id", "container.id", "file.path", "file.name", "file.destination.path", "process.pid",
    "process.ppid", "process.uid", "process.credentials.uid", "process.credentials", "process.parent",
    "process.ancestors",
};

typedef struct {
    char *key;
    Py_ssize_t keylen;
    int kind, item, child, slot; /* item: an array's item kind; child: the node of an object (or items) */
    int cached;                  /* an object whose texts are checked once (see the objects registry) */
} Prop;

typedef struct {
    Prop *props;
    int n;
    uint64_t required;
} Node;

#define MAX_PROPS 64
#define FREE_DEPTH_CAP 256 /* free-form nesting taken here at most (deeper: the Python path) */
#define SKIP_DEPTH_CAP 1000
#define MAX_FIELD_CHARS 1024
#define MAX_TAGS 256
#define MIN_CUT 64
#define NCOLS 28
#define ID_HEX 24
#define NS_PER_DAY 86400000000000LL

typedef struct {
    Py_ssize_t pos, len;
    int set;
    int64_t num;
} Cap;

/* ---- the ancestors registry ------------------------------------------------------------------------- */

#define HASH_BYTES 32 /* texts are found by a hash of their first bytes, */
#define MAX_CHAIN 8    /* at most this many per hash bucket (the oldest go: lookups stay cheap) */
#define MAX_SHORTS 64
#define REGISTRY_MAX_BYTES ((size_t)64 << 20)
#define NBUCKETS 4096

typedef struct Entry {
    struct Entry *next;
    uint64_t hash;
    uint8_t *text;
    Py_ssize_t len;
    long depth;        /* the nesting limit its free-form parts were checked against */
    int has_key;       /* the text holds an `"ancestors":` (then the cut's place is searched for, as `_offset`) */
    PyObject *lineage; /* the Lineage of opencws.backend.lineages (owned) */
    PyObject *first;   /* bytes: the first ancestor's executable path */
    PyObject *paths;   /* bytes: the RowBinary Array(String) of every ancestor's path */
    PyObject *names;   /* bytes: ... and name */
} Entry;

typedef struct {
    PyObject_HEAD
    Node *nodes;
    int nnodes;
    PyObject *learn; /* learn(text: bytes, max_depth) -> (lineage, first, paths, names, depth) | None */
    Entry *buckets[NBUCKETS];
    Entry *shorts; /* texts shorter than HASH_BYTES */
    int nshorts;
    size_t bytes;
    unsigned out_ratio; /* the last batch's output size per body byte, in 1/1024ths (0: none yet) */
    struct Known *known[NBUCKETS]; /* the objects registry */
    size_t known_bytes;
} Parser;

static PyObject *Cut_class = NULL; /* opencws.backend.store.rowbinary.Cut */

static uint64_t hash_head(const uint8_t *p) {
    uint64_t w[4], h = 0;
    memcpy(w, p, sizeof w);
    for (int k = 0; k < 4; k++)
        h = (h ^ w[k]) * 0x9E3779B97F4A7C15ULL + 0xC2B2AE3D27D4EB4FULL;
    return h ^ (h >> 29);
}

static void entry_free(Entry *e) {
    Py_XDECREF(e->lineage);
    Py_XDECREF(e->first);
    Py_XDECREF(e->paths);
    Py_XDECREF(e->names);
    PyMem_Free(e->text);
    PyMem_Free(e);
}

static void chain_free(Entry *e) {
    while (e) {
        Entry *next = e->next;
        entry_free(e);
        e = next;
    }
}

static void registry_clear(Parser *pr) {
    for (int b = 0; b < NBUCKETS; b++) {
        chain_free(pr->buckets[b]);
        pr->buckets[b] = NULL;
    }
    chain_free(pr->shorts);
    pr->shorts = NULL;
    pr->nshorts = 0;
    pr->bytes = 0;
}

static void shorts_clear(Parser *pr) {
    for (Entry *e = pr->shorts; e; e = e->next)
        pr->bytes -= (size_t)e->len;
    chain_free(pr->shorts);
    pr->shorts = NULL;
    pr->nshorts = 0;
}

/* The known text the value at `p` (`avail` bytes left in its document) starts with: a JSON array is
 * prefix-free, so when those bytes equal a complete known text, that text is the value. */
static Entry *registry_find(Parser *pr, const uint8_t *p, Py_ssize_t avail) {
    if (avail >= HASH_BYTES) {
        uint64_t h = hash_head(p);
        for (Entry *e = pr->buckets[h & (NBUCKETS - 1)]; e; e = e->next)
            if (e->hash == h && e->len <= avail && memcmp(e->text, p, (size_t)e->len) == 0)
                return e;
    }
    for (Entry *e = pr->shorts; e; e = e->next)
        if (e->len <= avail && memcmp(e->text, p, (size_t)e->len) == 0)
            return e;
    return NULL;
}

/* Asks Python about a text (not known, or known against a looser limit); registers it when valid.
 * Returns the entry, NULL with no exception (not plainly valid), or NULL with an exception. */
static Entry *registry_learn(Parser *pr, const uint8_t *p, Py_ssize_t len, int max_depth) {
    PyObject *r = PyObject_CallFunction(pr->learn, "y#i", (const char *)p, len, max_depth);
    if (r == NULL)
        return NULL;
    if (r == Py_None) {
        Py_DECREF(r);
        return NULL;
    }
    PyObject *lineage, *first, *paths, *names;
    long depth;
    if (!PyArg_ParseTuple(r, "OSSSl", &lineage, &first, &paths, &names, &depth)) {
        Py_DECREF(r);
        return NULL;
    }
    /* Any older entry of the same text goes (it was checked against a looser limit). Too many short texts
     * (a client may send any number of them: `[ ]`, `[  ]`...): the short ones go, not the long ones. */
    if (len < HASH_BYTES && pr->nshorts >= MAX_SHORTS && pr->bytes + (size_t)len <= REGISTRY_MAX_BYTES)
        shorts_clear(pr);
    if (pr->bytes + (size_t)len > REGISTRY_MAX_BYTES)
        registry_clear(pr);
    else {
        Entry **at = len >= HASH_BYTES ? &pr->buckets[hash_head(p) & (NBUCKETS - 1)] : &pr->shorts;
        for (; *at; at = &(*at)->next)
            if ((*at)->len == len && memcmp((*at)->text, p, (size_t)len) == 0) {
                Entry *old = *at;
                *at = old->next;
                pr->bytes -= (size_t)old->len;
                if (len < HASH_BYTES)
                    pr->nshorts--;
                entry_free(old);
                break;
            }
    }
    Entry *e = PyMem_Calloc(1, sizeof(Entry));
    uint8_t *text = PyMem_Malloc(len > 0 ? (size_t)len : 1);
    if (e == NULL || text == NULL) {
        PyMem_Free(e);
        PyMem_Free(text);
        Py_DECREF(r);
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(text, p, (size_t)len);
    e->text = text;
    e->len = len;
    e->depth = depth;
    e->has_key = memmem(text, (size_t)len, "\"ancestors\":", 12) != NULL;
    Py_INCREF(lineage);
    e->lineage = lineage;
    Py_INCREF(first);
    e->first = first;
    Py_INCREF(paths);
    e->paths = paths;
    Py_INCREF(names);
    e->names = names;
    Py_DECREF(r);
    if (len >= HASH_BYTES) {
        e->hash = hash_head(p);
        Entry **b = &pr->buckets[e->hash & (NBUCKETS - 1)];
        e->next = *b;
        *b = e;
        Entry **at = &e->next;
        for (int n = 1; *at && n < MAX_CHAIN; n++)
            at = &(*at)->next;
        while (*at) {
            Entry *old = *at;
            *at = old->next;
            pr->bytes -= (size_t)old->len;
            entry_free(old);
        }
    } else {
        e->next = pr->shorts;
        pr->shorts = e;
        pr->nshorts++;
    }
    pr->bytes += (size_t)len;
    return e;
}


/* ---- the objects registry --------------------------------------------------------------------------- */

/* The texts of some objects repeat from event to event (a process's parent, credentials and executable):
 * each distinct text of such a property (`Prop.cached`) is checked once, then matched by memcmp (an object
 * is prefix-free like an array), with what the row needs of it (its captured values, relative to its start)
 * and what its check depended on (the deepest free-form nesting in it, whether it holds an escape). A text
 * holding an `"ancestors":` key is never kept (the cut's place depends on the first such key). */

#define KNOWN_MAX_BYTES ((size_t)16 << 20)
#define KNOWN_MAX_TEXT 65536
#define KNOWN_CAPS 8

typedef struct Known {
    struct Known *next;
    uint64_t hash;
    int node, free_max, escaped, ncaps;
    struct {
        int slot;
        Cap cap; /* pos: relative to the text's start */
    } caps[KNOWN_CAPS];
    Py_ssize_t len;
    uint8_t text[];
} Known;

static void known_clear(Parser *pr) {
    for (int b = 0; b < NBUCKETS; b++) {
        Known *k = pr->known[b];
        while (k) {
            Known *next = k->next;
            PyMem_Free(k);
            k = next;
        }
        pr->known[b] = NULL;
    }
    pr->known_bytes = 0;
}

static Known *known_find(Parser *pr, int node, const uint8_t *p, Py_ssize_t avail) {
    if (avail < HASH_BYTES)
        return NULL;
    uint64_t h = hash_head(p);
    for (Known *k = pr->known[h & (NBUCKETS - 1)]; k; k = k->next)
        if (k->hash == h && k->node == node && k->len <= avail && memcmp(k->text, p, (size_t)k->len) == 0)
            return k;
    return NULL;
}

/* Keeps the object just checked at p[0:len] (its captured values: the slots `before` did not have). Best
 * effort: nothing kept when it does not fit. */
static void known_add(Parser *pr, int node, const uint8_t *p, Py_ssize_t len, const Cap *before, const Cap *after,
                      Py_ssize_t start, int free_max, int escaped) {
    if (len < HASH_BYTES || len > KNOWN_MAX_TEXT)
        return;
    if (memmem(p, (size_t)len, "\"ancestors\":", 12) != NULL)
        return;
    if (pr->known_bytes + (size_t)len > KNOWN_MAX_BYTES)
        known_clear(pr);
    Known *k = PyMem_Malloc(sizeof(Known) + (size_t)len);
    if (k == NULL)
        return; /* (only a cache) */
    k->ncaps = 0;
    for (int slot = 0; slot < NCAPS; slot++)
        if (memcmp(&before[slot], &after[slot], sizeof(Cap)) != 0) {
            if (k->ncaps == KNOWN_CAPS) {
                PyMem_Free(k);
                return;
            }
            k->caps[k->ncaps].slot = slot;
            k->caps[k->ncaps].cap = after[slot];
            k->caps[k->ncaps].cap.pos -= start;
            k->ncaps++;
        }
    k->hash = hash_head(p);
    k->node = node;
    k->free_max = free_max;
    k->escaped = escaped;
    k->len = len;
    memcpy(k->text, p, (size_t)len);
    Known **b = &pr->known[k->hash & (NBUCKETS - 1)];
    k->next = *b;
    *b = k;
    pr->known_bytes += (size_t)len;
    Known **at = &k->next;
    for (int n = 1; *at && n < MAX_CHAIN; n++)
        at = &(*at)->next;
    while (*at) {
        Known *old = *at;
        *at = old->next;
        pr->known_bytes -= (size_t)old->len;
        PyMem_Free(old);
    }
}

/* ---- the scanner ------------------------------------------------------------------------------------ */

#define BAIL (-1)  /* not plainly valid: the Python path answers */
#define ERROR (-2) /* a Python exception is set */

typedef struct {
    const uint8_t *s; /* the body */
    Py_ssize_t i, end; /* the cursor, the end of the current document */
    Parser *pr;
    int max_depth, free_limit;
    Cap caps[NCAPS];
    Py_ssize_t anc_key; /* where the first `"ancestors":` key of the event is (-1: none) */
    int escaped;        /* a string of the event holds an escape (then `anc_key` is searched for) */
    int free_max;       /* the deepest free-form nesting seen (for the objects registry) */
    Entry *entry;       /* the ancestors' entry (NULL: no ancestors) */
} Doc;

static inline void skip_ws(Doc *d) {
    while (d->i < d->end) {
        uint8_t c = d->s[d->i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            break;
        d->i++;
    }
}

static inline int peek(Doc *d) { return d->i < d->end ? d->s[d->i] : -1; }

/* Whether any of 8 bytes is a quote, a backslash, below 0x20 or above 0x7F (exact, no false positive). */
static inline int special8(uint64_t v) {
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
    uint64_t found = (v & high) | ((v - ones * 0x20) & ~v & high) | ((q - ones) & ~q & high) |
                     ((b - ones) & ~b & high);
    return found != 0;
}

/* One UTF-8 sequence starting with `c` (>= 0x80) at s[i]: its length, or 0 when not valid UTF-8 (overlong
 * forms, surrogates and code points past U+10FFFF included). */
static inline int utf8_seq(const uint8_t *s, Py_ssize_t i, Py_ssize_t end) {
    uint8_t c = s[i];
    if (c >= 0xC2 && c <= 0xDF) {
        if (i + 1 < end && (s[i + 1] & 0xC0) == 0x80)
            return 2;
        return 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (i + 2 >= end)
            return 0;
        uint8_t c1 = s[i + 1], c2 = s[i + 2];
        if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && c1 < 0xA0)
            return 0;
        if (c == 0xED && c1 >= 0xA0)
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (i + 3 >= end)
            return 0;
        uint8_t c1 = s[i + 1], c2 = s[i + 2], c3 = s[i + 3];
        if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && c1 < 0x90)
            return 0;
        if (c == 0xF4 && c1 >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

static inline int hex4(const uint8_t *p, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v |= (unsigned)((c | 0x20) - 'a' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* A string at the cursor (on its opening quote): its content's position and length, and how many code
 * points it has (when `chars` is given). Bails on a control character, invalid UTF-8, and on an escape unless
 * `escapes` (a value no column holds: its text is stored as received, nothing needs its decoded form); even
 * then `\u` of a surrogate bails (the lone surrogates of `opencws.model.jsontext` are the slow path's). */
static int scan_string(Doc *d, Py_ssize_t *pos, Py_ssize_t *len, Py_ssize_t *chars, int escapes) {
    const uint8_t *s = d->s;
    Py_ssize_t i = d->i + 1, end = d->end, n = 0;
    for (;;) {
#ifdef __SSE2__
        while (i + 16 <= end) {
            __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
            __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                       _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))); /* signed: bytes >= 0x80 too */
            int mask = _mm_movemask_epi8(hit);
            if (mask) {
                int skip = __builtin_ctz(mask);
                i += skip;
                n += skip;
                break;
            }
            i += 16;
            n += 16;
        }
#endif
        while (i + 8 <= end) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (special8(v))
                break;
            i += 8;
            n += 8;
        }
        if (i >= end)
            return BAIL;
        uint8_t c = s[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return BAIL;
        if (c == '\\') {
            if (!escapes || i + 1 >= end)
                return BAIL;
            c = s[i + 1];
            if (c == 'u') {
                unsigned u;
                if (end - i < 6 || hex4(s + i + 2, &u) || (u >= 0xD800 && u <= 0xDFFF))
                    return BAIL;
                i += 6;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't')
                i += 2;
            else
                return BAIL;
            d->escaped = 1;
            n++;
            continue;
        }
        if (c < 0x80) {
            i++;
            n++;
            continue;
        }
        int k = utf8_seq(s, i, end);
        if (k == 0)
            return BAIL;
        i += k;
        n++;
    }
    *pos = d->i + 1;
    *len = i - *pos;
    if (chars)
        *chars = n;
    d->i = i + 1;
    return 0;
}

/* A JSON integer at the cursor that fits an Int64 (`-?(0|[1-9][0-9]*)` not followed by a fraction or an
 * exponent); anything else bails (msgspec may take more: the Python path then answers). */
static int scan_int(Doc *d, int64_t *out) {
    const uint8_t *s = d->s;
    Py_ssize_t i = d->i, end = d->end;
    int neg = 0;
    if (i < end && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= end || s[i] < '0' || s[i] > '9')
        return BAIL;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (s[i] == '0')
        i++;
    else
        while (i < end && s[i] >= '0' && s[i] <= '9') {
            uint64_t digit = (uint64_t)(s[i] - '0');
            if (v > (limit - digit) / 10)
                return BAIL;
            v = v * 10 + digit;
            i++;
        }
    if (i < end && (s[i] == '.' || s[i] == 'e' || s[i] == 'E' || (s[i] >= '0' && s[i] <= '9')))
        return BAIL;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    d->i = i;
    return 0;
}

static int scan_literal(Doc *d, const char *word, Py_ssize_t n) {
    if (d->end - d->i < n || memcmp(d->s + d->i, word, (size_t)n) != 0)
        return BAIL;
    d->i += n;
    return 0;
}

/* Notes where the first `"ancestors":` of the event's text is (a key: without escapes, nothing else can
 * hold those bytes), as the Python path's `_offset` finds it. */
static inline void note_key(Doc *d, Py_ssize_t pos, Py_ssize_t len) {
    if (d->anc_key < 0 && len == 9 && memcmp(d->s + pos, "ancestors", 9) == 0 && d->i < d->end &&
        d->s[d->i] == ':')
        d->anc_key = pos - 1;
}

/* A free-form value ("Any": `credentials.destination`), nesting bounded like `_free_form_too_deep`: the
 * value itself is level `depth` when it is an object or an array. Objects' keys may repeat (msgspec keeps
 * them as a dict either way; the text is stored as received). */
static int scan_free(Doc *d, int depth) {
    int c = peek(d);
    Py_ssize_t pos, len;
    int64_t num;
    switch (c) {
    case '"':
        return scan_string(d, &pos, &len, NULL, 1);
    case 't':
        return scan_literal(d, "true", 4);
    case 'f':
        return scan_literal(d, "false", 5);
    case 'n':
        return scan_literal(d, "null", 4);
    case '{':
    case '[':
        if (depth > d->free_limit)
            return BAIL;
        if (depth > d->free_max)
            d->free_max = depth;
        d->i++;
        skip_ws(d);
        if (peek(d) == (c == '{' ? '}' : ']')) {
            d->i++;
            return 0;
        }
        for (;;) {
            int r;
            if (c == '{') {
                if (peek(d) != '"' || scan_string(d, &pos, &len, NULL, 1))
                    return BAIL;
                note_key(d, pos, len);
                skip_ws(d);
                if (peek(d) != ':')
                    return BAIL;
                d->i++;
                skip_ws(d);
            }
            if ((r = scan_free(d, depth + 1)))
                return r;
            skip_ws(d);
            int e = peek(d);
            d->i++;
            if (e == ',') {
                skip_ws(d);
                continue;
            }
            if (e == (c == '{' ? '}' : ']'))
                return 0;
            return BAIL;
        }
    default:
        return scan_int(d, &num);
    }
}

/* The end of any JSON value (the text of `process.ancestors` not known yet, which Python then checks whole):
 * brackets counted outside strings, escapes skipped; nothing else checked. */
static int skip_value(Doc *d) {
    const uint8_t *s = d->s;
    Py_ssize_t i = d->i, end = d->end;
    int depth = 0;
    while (i < end) {
        uint8_t c = s[i++];
        if (c == '"') {
            while (i < end && s[i] != '"')
                i += s[i] == '\\' ? 2 : 1;
            if (i >= end)
                return BAIL;
            i++;
        } else if (c == '[' || c == '{') {
            if (++depth > SKIP_DEPTH_CAP)
                return BAIL;
        } else if (c == ']' || c == '}') {
            if (--depth < 0)
                return BAIL;
        }
        if (depth == 0) {
            if (c == ',' || c == ']' || c == '}' || c == '"')
                break;
            /* a scalar: runs to the next delimiter */
            while (i < end && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
                   s[i] != '\r' && s[i] != '\n')
                i++;
            break;
        }
    }
    if (depth != 0)
        return BAIL;
    d->i = i;
    return 0;
}

/* ---- date-times ------------------------------------------------------------------------------------- */

static inline int digits(const uint8_t *p, int n, int *out) {
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (p[k] < '0' || p[k] > '9')
            return -1;
        v = v * 10 + (p[k] - '0');
    }
    *out = v;
    return 0;
}

static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* `structs._DATE_TIME` exactly (no leap second, February 29 of leap years only, upper-case T and Z, at most
 * nanoseconds);
 * the instant in nanoseconds since the epoch into `ns` when given (as `rows.plain_date`). */
static int date_time(const uint8_t *p, Py_ssize_t n, int64_t *ns) {
    int y, mo, da, h, mi, se, oh = 0, om = 0, sign = 0;
    if (n < 20 || digits(p, 4, &y) || p[4] != '-' || digits(p + 5, 2, &mo) || p[7] != '-' ||
        digits(p + 8, 2, &da) || p[10] != 'T' || digits(p + 11, 2, &h) || p[13] != ':' ||
        digits(p + 14, 2, &mi) || p[16] != ':' || digits(p + 17, 2, &se))
        return BAIL;
    static const int month_days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    if (mo < 1 || mo > 12 || da < 1 || da > month_days[mo] + leap || h > 23 || mi > 59 || se > 59)
        return BAIL;
    Py_ssize_t i = 19;
    int64_t frac = 0;
    if (p[i] == '.') {
        int k = 0;
        i++;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            if (++k > 9)
                return BAIL;
            frac = frac * 10 + (p[i] - '0');
            i++;
        }
        if (k == 0)
            return BAIL;
        for (; k < 9; k++)
            frac *= 10;
    }
    if (i < n && p[i] == 'Z')
        i++;
    else if (i < n && (p[i] == '+' || p[i] == '-')) {
        sign = p[i] == '+' ? 1 : -1;
        if (n - i < 6 || digits(p + i + 1, 2, &oh) || p[i + 3] != ':' || digits(p + i + 4, 2, &om) || oh > 23 ||
            om > 59)
            return BAIL;
        i += 6;
    } else
        return BAIL;
    if (i != n)
        return BAIL;
    if (ns) {
        /* (years run to 9999: past RowBinary's Date, say -1, before the nanoseconds overflow an Int64) */
        int64_t secs = days_from_civil(y, mo, da) * 86400 + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
        *ns = secs < 0 || secs >= 65536LL * 86400 ? -1 : secs * 1000000000LL + frac;
    }
    return 0;
}

/* ---- the document parser ---------------------------------------------------------------------------- */

static int parse_object(Doc *d, int node);

static int parse_known(Doc *d, int child, int slot);

static int parse_value(Doc *d, int kind, int item, int child, int slot) {
    Py_ssize_t pos, len;
    int64_t num;
    int c = peek(d), r;
    switch (kind) {
    case K_STRING:
    case K_DATE:
        if (c != '"' || scan_string(d, &pos, &len, NULL, kind == K_STRING && slot < 0))
            return BAIL;
        if (kind == K_DATE && date_time(d->s + pos, len, NULL))
            return BAIL;
        if (slot >= 0)
            d->caps[slot] = (Cap){pos, len, 1, 0};
        return 0;
    case K_INT:
        if (scan_int(d, &num))
            return BAIL;
        if (slot >= 0)
            d->caps[slot] = (Cap){0, 0, 1, num};
        return 0;
    case K_BOOL:
        return c == 't' ? scan_literal(d, "true", 4) : scan_literal(d, "false", 5);
    case K_OBJECT:
        if (c != '{')
            return BAIL;
        if (slot >= 0)
            d->caps[slot].set = 1;
        return parse_object(d, child);
    case K_ANY:
        return scan_free(d, 1);
    case K_ARRAY:
        if (c != '[')
            return BAIL;
        d->i++;
        skip_ws(d);
        if (peek(d) == ']') {
            d->i++;
            return 0;
        }
        for (;;) {
            if ((r = parse_value(d, item, 0, child, -1)))
                return r;
            skip_ws(d);
            c = peek(d);
            d->i++;
            if (c == ']')
                return 0;
            if (c != ',')
                return BAIL;
            skip_ws(d);
        }
    case K_ANCESTORS: {
        if (c != '[')
            return BAIL;
        Py_ssize_t start = d->i;
        Entry *e = registry_find(d->pr, d->s + start, d->end - start);
        if (e != NULL && e->depth <= d->max_depth)
            d->i = start + e->len;
        else {
            if ((r = skip_value(d)))
                return r;
            e = registry_learn(d->pr, d->s + start, d->i - start, d->max_depth);
            if (e == NULL)
                return PyErr_Occurred() ? ERROR : BAIL;
        }
        d->entry = e;
        d->caps[C_ANCESTORS] = (Cap){start, e->len, 1, 0};
        return 0;
    }
    }
    return BAIL;
}

/* An object of the schema's `node` at the cursor: known keys only, each once, the required ones present. */
static int parse_object(Doc *d, int node) {
    const Node *nd = &d->pr->nodes[node];
    uint64_t seen = 0;
    int hint = 0, r;
    d->i++; /* '{' */
    skip_ws(d);
    if (peek(d) == '}') {
        d->i++;
        return nd->required ? BAIL : 0;
    }
    for (;;) {
        /* A known key is matched on the raw bytes (the schema's keys hold no quote, backslash or control
         * character: they need no scan); keys mostly come in the schema's order: the one after the last
         * matched is tried first. Anything else is no key of this object: bail. */
        const uint8_t *at = d->s + d->i;
        Py_ssize_t avail = d->end - d->i;
        if (avail < 2 || at[0] != '"')
            return BAIL;
        int k = -1;
        for (int t = 0; t < nd->n; t++) {
            int j = hint + t < nd->n ? hint + t : hint + t - nd->n;
            const Prop *p = &nd->props[j];
            if (p->keylen + 2 <= avail && at[p->keylen + 1] == '"' && memcmp(p->key, at + 1, (size_t)p->keylen) == 0) {
                k = j;
                break;
            }
        }
        if (k < 0 || (seen >> k) & 1)
            return BAIL;
        seen |= (uint64_t)1 << k;
        hint = k + 1 < nd->n ? k + 1 : 0;
        d->i += nd->props[k].keylen + 2;
        if (nd->props[k].kind == K_ANCESTORS)
            note_key(d, d->i - 10, 9);
        skip_ws(d);
        if (peek(d) != ':')
            return BAIL;
        d->i++;
        skip_ws(d);
        const Prop *p = &nd->props[k];
        if ((r = p->cached ? parse_known(d, p->child, p->slot) : parse_value(d, p->kind, p->item, p->child, p->slot)))
            return r;
        skip_ws(d);
        int c = peek(d);
        d->i++;
        if (c == '}')
            break;
        if (c != ',')
            return BAIL;
        skip_ws(d);
    }
    return (seen & nd->required) == nd->required ? 0 : BAIL;
}


/* An object of a `cached` property: a text known already, or checked and kept. */
static int parse_known(Doc *d, int child, int slot) {
    Py_ssize_t start = d->i;
    if (peek(d) != '{')
        return BAIL;
    if (slot >= 0)
        d->caps[slot].set = 1;
    Known *k = known_find(d->pr, child, d->s + start, d->end - start);
    if (k != NULL && k->free_max <= d->free_limit) {
        d->i = start + k->len;
        for (int j = 0; j < k->ncaps; j++) {
            Cap c = k->caps[j].cap;
            c.pos += start;
            d->caps[k->caps[j].slot] = c;
        }
        d->escaped |= k->escaped;
        if (k->free_max > d->free_max)
            d->free_max = k->free_max;
        if (slot >= 0)
            d->caps[slot] = (Cap){start, k->len, 1, 0};
        return 0;
    }
    Cap before[NCAPS];
    memcpy(before, d->caps, sizeof before);
    int escaped = d->escaped, free_max = d->free_max;
    d->escaped = 0;
    d->free_max = 0;
    int r = parse_object(d, child);
    if (r == 0)
        known_add(d->pr, child, d->s + start, d->i - start, before, d->caps, start, d->free_max, d->escaped);
    d->escaped |= escaped;
    if (free_max > d->free_max)
        d->free_max = free_max;
    if (r == 0 && slot >= 0)
        d->caps[slot] = (Cap){start, d->i - start, 1, 0}; /* (its text: not one of the values it keeps) */
    return r;
}

/* The agent's envelope (`intake._FastEnvelope`, `_plain_envelope`). */
enum { E_RULE_ID, E_RULE_VERSION, E_POLICY, E_HOST, E_AGENT_VERSION, E_TAGS, E_EVENT, NENV };
static const char *const ENV_KEYS[NENV] = {"rule_id", "rule_version", "policy", "host", "agent_version",
                                           "tags", "event"};

typedef struct {
    Cap f[E_TAGS];       /* the strings (position in the body), or a decimal text for rule_version */
    char version[24];    /* rule_version given as an integer: its decimal text */
    int version_is_int;
    int ntags;
    Py_ssize_t tags[MAX_TAGS][2];
    Py_ssize_t event_lo, event_hi;
} Env;

static int env_key(const uint8_t *p, Py_ssize_t len) {
    for (int k = 0; k < NENV; k++)
        if ((Py_ssize_t)strlen(ENV_KEYS[k]) == len && memcmp(ENV_KEYS[k], p, (size_t)len) == 0)
            return k;
    return -1;
}

static int env_string(Doc *d, Cap *out) {
    Py_ssize_t pos, len, chars;
    if (peek(d) == 'n')
        return scan_literal(d, "null", 4);
    if (peek(d) != '"' || scan_string(d, &pos, &len, &chars, 0) || chars > MAX_FIELD_CHARS)
        return BAIL;
    *out = (Cap){pos, len, 1, 0};
    return 0;
}

static int parse_envelope(Doc *d, Env *env) {
    unsigned seen = 0;
    int r;
    d->i++; /* '{' */
    skip_ws(d);
    for (;;) {
        Py_ssize_t pos, len;
        if (peek(d) != '"' || scan_string(d, &pos, &len, NULL, 0))
            return BAIL;
        int k = env_key(d->s + pos, len);
        if (k < 0 || (seen >> k) & 1)
            return BAIL;
        seen |= 1u << k;
        skip_ws(d);
        if (peek(d) != ':')
            return BAIL;
        d->i++;
        skip_ws(d);
        int c = peek(d);
        if (k == E_EVENT) {
            if (c != '{')
                return BAIL;
            env->event_lo = d->i;
            d->anc_key = -1;
            if ((r = parse_object(d, 0)))
                return r;
            env->event_hi = d->i;
        } else if (k == E_TAGS) {
            if (c == 'n') {
                if (scan_literal(d, "null", 4))
                    return BAIL;
            } else {
                if (c != '[')
                    return BAIL;
                d->i++;
                skip_ws(d);
                if (peek(d) == ']')
                    d->i++;
                else
                    for (;;) {
                        Cap t = {0, 0, 0, 0};
                        if (peek(d) != '"' || env_string(d, &t) || env->ntags >= MAX_TAGS)
                            return BAIL;
                        env->tags[env->ntags][0] = t.pos;
                        env->tags[env->ntags][1] = t.len;
                        env->ntags++;
                        skip_ws(d);
                        c = peek(d);
                        d->i++;
                        if (c == ']')
                            break;
                        if (c != ',')
                            return BAIL;
                        skip_ws(d);
                    }
            }
        } else if (k == E_RULE_VERSION && (c == '-' || (c >= '0' && c <= '9'))) {
            int64_t v;
            if (scan_int(d, &v))
                return BAIL;
            snprintf(env->version, sizeof env->version, "%lld", (long long)v);
            env->version_is_int = 1;
            env->f[k].set = 1;
        } else if (env_string(d, &env->f[k]))
            return BAIL;
        skip_ws(d);
        c = peek(d);
        d->i++;
        if (c == '}')
            break;
        if (c != ',')
            return BAIL;
        skip_ws(d);
    }
    return (seen >> E_EVENT) & 1 ? 0 : BAIL;
}

/* ---- the RowBinary writer --------------------------------------------------------------------------- */

/* The output: written straight into a bytes object (grown by _PyBytes_Resize, cut to size at the end). */
typedef struct {
    PyObject *obj;
    uint8_t *p;
    size_t n, cap;
} Buf;

static int buf_reserve(Buf *b, size_t more) {
    if (more > PY_SSIZE_T_MAX / 2 - b->n) {
        PyErr_NoMemory();
        return ERROR;
    }
    if (b->n + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap + b->cap / 2 : 4096;
    while (cap < b->n + more)
        cap += cap / 2;
    if (b->obj == NULL)
        b->obj = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cap);
    else if (_PyBytes_Resize(&b->obj, (Py_ssize_t)cap))
        b->obj = NULL; /* (freed by _PyBytes_Resize) */
    if (b->obj == NULL) {
        b->p = NULL;
        b->cap = b->n = 0;
        return ERROR;
    }
    b->p = (uint8_t *)PyBytes_AS_STRING(b->obj);
    b->cap = cap;
#ifdef MADV_HUGEPAGE
    /* A large output is fresh memory every batch: in huge pages, the kernel maps it in a few faults instead
     * of one per 4 KiB page (a third of the pass's time here). Advice only: any failure is ignored. */
    if (cap >= ((size_t)8 << 20)) {
        uintptr_t lo = ((uintptr_t)b->p + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
        uintptr_t hi = ((uintptr_t)b->p + cap) & ~(uintptr_t)((2u << 20) - 1);
        if (hi > lo)
            madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#endif
    return 0;
}

/* (space reserved by the caller: 10 bytes for a length) */
static inline void put_leb(Buf *b, uint64_t v) {
    while (v >= 0x80) {
        b->p[b->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->n++] = (uint8_t)v;
}

static inline void put_le(Buf *b, uint64_t v, int bytes) {
    for (int k = 0; k < bytes; k++)
        b->p[b->n++] = (uint8_t)(v >> (8 * k));
}

static int put_str(Buf *b, const void *p, Py_ssize_t n) {
    if (buf_reserve(b, 10 + (size_t)n))
        return ERROR;
    put_leb(b, (uint64_t)n);
    if (n)
        memcpy(b->p + b->n, p, (size_t)n);
    b->n += (size_t)n;
    return 0;
}

static int put_raw(Buf *b, const void *p, Py_ssize_t n) {
    if (buf_reserve(b, (size_t)n))
        return ERROR;
    memcpy(b->p + b->n, p, (size_t)n);
    b->n += (size_t)n;
    return 0;
}

static int put_cap(Buf *b, const uint8_t *s, const Cap *c) { return put_str(b, s + c->pos, c->set ? c->len : 0); }

/* A captured string when it is there and not empty (Python's `x or ...`). */
static inline int nonempty(const Cap *c) { return c->set && c->len > 0; }

/* `rows._name`: the name, else the path's last part. */
static int put_name(Buf *b, const uint8_t *s, const Cap *name, const Cap *path) {
    if (nonempty(name))
        return put_cap(b, s, name);
    if (!nonempty(path))
        return put_str(b, "", 0);
    Py_ssize_t k = path->len;
    while (k > 0 && s[path->pos + k - 1] != '/')
        k--;
    return put_str(b, s + path->pos + k, path->len - k);
}

/* ---- the lazy row ----------------------------------------------------------------------------------- */

/* One event's row as `rows.event_row` makes it, read from the batch's RowBinary on demand (the detection
 * engine reads a few columns of some rows; the store takes the RowBinary whole). */
typedef struct {
    PyObject_HEAD
    PyObject *body, *encoded, *lineage; /* lineage: NULL without ancestors */
    Py_ssize_t off, text_lo, text_len, at, size; /* size: the cut's (0: nothing cut) */
    int has_parent;
} Row;

static const char COLUMN_TYPES[NCOLS] = "DISSSSSSSSAIIISSSSSAASSSSSIS";
static const char *const COLUMN_NAMES[NCOLS] = {
    "day", "date", "id", "evt_name", "evt_outcome", "host", "rule_id", "rule_version", "policy",
    "agent_version", "tags", "process_pid", "process_ppid", "process_uid", "process_user", "process_comm",
    "process_file_path", "process_file_name", "parent_file_path", "ancestors_file_path", "ancestors_file_name",
    "container_id", "file_path", "file_name", "destination_path", "context", "context_at", "event",
};
enum { COL_PARENT_PATH = 18, COL_ANC_PATHS = 19, COL_ANC_NAMES = 20, COL_EVENT = 27 };

static void Row_dealloc(Row *r) {
    Py_XDECREF(r->body);
    Py_XDECREF(r->encoded);
    Py_XDECREF(r->lineage);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static Py_ssize_t Row_length(PyObject *self) { return NCOLS; }

static int read_leb(const uint8_t *p, Py_ssize_t n, Py_ssize_t *at, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *at < n; shift += 7) {
        uint8_t c = p[(*at)++];
        v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static PyObject *decode_str(const uint8_t *p, Py_ssize_t n, Py_ssize_t *at) {
    uint64_t len;
    if (read_leb(p, n, at, &len) || len > (uint64_t)(n - *at))
        return PyErr_Format(PyExc_ValueError, "a row's RowBinary ends early");
    PyObject *s = PyUnicode_DecodeUTF8((const char *)p + *at, (Py_ssize_t)len, "surrogateescape");
    *at += (Py_ssize_t)len;
    return s;
}

/* The facts of the row's lineage (`rows.Lineage`): (first path, paths, names). */
static PyObject *lineage_fact(Row *r, int k) {
    PyObject *facts = PyObject_GetAttrString(r->lineage, "facts");
    if (facts == NULL)
        return NULL;
    PyObject *v = PySequence_GetItem(facts, k);
    Py_DECREF(facts);
    return v;
}

static PyObject *Row_item(PyObject *self, Py_ssize_t col) {
    Row *r = (Row *)self;
    if (col < 0 || col >= NCOLS) {
        PyErr_SetString(PyExc_IndexError, "row index out of range");
        return NULL;
    }
    if (col == COL_EVENT) {
        PyObject *view = PyMemoryView_FromObject(r->body);
        if (view == NULL)
            return NULL;
        PyObject *text = PySequence_GetSlice(view, r->text_lo, r->text_lo + r->text_len);
        Py_DECREF(view);
        if (text == NULL || r->size == 0)
            return text;
        PyObject *cut = PyObject_CallFunction(Cut_class, "Onn", text, r->at, r->size);
        Py_DECREF(text);
        return cut;
    }
    if (r->lineage != NULL && (col == COL_ANC_PATHS || col == COL_ANC_NAMES || (col == COL_PARENT_PATH && !r->has_parent)))
        return lineage_fact(r, col == COL_PARENT_PATH ? 0 : col - COL_ANC_PATHS + 1);
    if (r->lineage == NULL && (col == COL_ANC_PATHS || col == COL_ANC_NAMES))
        return PyList_New(0);
    const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(r->encoded);
    Py_ssize_t n = PyBytes_GET_SIZE(r->encoded), at = r->off;
    for (int k = 0;; k++) {
        char t = COLUMN_TYPES[k];
        if (k == col) {
            if (t == 'D') {
                if (n - at < 2)
                    break;
                int y, m, dd;
                civil_from_days(p[at] | (p[at + 1] << 8), &y, &m, &dd);
                return PyDate_FromDate(y, m, dd);
            }
            if (t == 'I') {
                if (n - at < 8)
                    break;
                uint64_t v = 0;
                for (int b = 7; b >= 0; b--)
                    v = (v << 8) | p[at + b];
                return PyLong_FromLongLong((long long)v);
            }
            if (t == 'S')
                return decode_str(p, n, &at);
            uint64_t count;
            if (read_leb(p, n, &at, &count) || count > (uint64_t)(n - at))
                break;
            PyObject *list = PyList_New((Py_ssize_t)count);
            for (Py_ssize_t e = 0; list && e < (Py_ssize_t)count; e++) {
                PyObject *s = decode_str(p, n, &at);
                if (s == NULL)
                    Py_CLEAR(list);
                else
                    PyList_SET_ITEM(list, e, s);
            }
            return list;
        }
        uint64_t len;
        if (t == 'D')
            at += 2;
        else if (t == 'I')
            at += 8;
        else if (t == 'S') {
            if (read_leb(p, n, &at, &len) || len > (uint64_t)(n - at))
                break;
            at += (Py_ssize_t)len;
        } else {
            uint64_t count;
            if (read_leb(p, n, &at, &count))
                break;
            for (uint64_t e = 0; e < count; e++) {
                if (read_leb(p, n, &at, &len) || len > (uint64_t)(n - at))
                    goto short_row;
                at += (Py_ssize_t)len;
            }
        }
        if (at > n)
            break;
    }
short_row:
    PyErr_SetString(PyExc_ValueError, "a row's RowBinary ends early");
    return NULL;
}

static PyObject *Row_tuple(PyObject *self) {
    PyObject *t = PyTuple_New(NCOLS);
    for (Py_ssize_t k = 0; t && k < NCOLS; k++) {
        PyObject *v = Row_item(self, k);
        if (v == NULL)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, k, v);
    }
    return t;
}

static PyObject *Row_subscript(PyObject *self, PyObject *key) {
    if (PyIndex_Check(key)) {
        Py_ssize_t k = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (k == -1 && PyErr_Occurred())
            return NULL;
        return Row_item(self, k < 0 ? k + NCOLS : k);
    }
    PyObject *t = Row_tuple(self);
    if (t == NULL)
        return NULL;
    PyObject *v = PyObject_GetItem(t, key);
    Py_DECREF(t);
    return v;
}

static PyObject *Row_richcompare(PyObject *self, PyObject *other, int op) {
    if (op != Py_EQ && op != Py_NE)
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *a = Row_tuple(self);
    if (a == NULL)
        return NULL;
    PyObject *b = PyObject_TypeCheck(other, Py_TYPE(self)) ? Row_tuple(other) : (Py_INCREF(other), other);
    if (b == NULL) {
        Py_DECREF(a);
        return NULL;
    }
    PyObject *res = PyTuple_Check(b) ? PyObject_RichCompare(a, b, op) : (Py_INCREF(Py_NotImplemented), Py_NotImplemented);
    Py_DECREF(a);
    Py_DECREF(b);
    return res;
}

static PyObject *Row_repr(PyObject *self) {
    PyObject *t = Row_tuple(self);
    if (t == NULL)
        return NULL;
    PyObject *s = PyUnicode_FromFormat("Row%R", t);
    Py_DECREF(t);
    return s;
}

static PySequenceMethods Row_as_sequence = {.sq_length = Row_length, .sq_item = Row_item};
static PyMappingMethods Row_as_mapping = {.mp_length = Row_length, .mp_subscript = Row_subscript};

static PyTypeObject RowType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "opencws.backend._intake.Row",
    .tp_basicsize = sizeof(Row),
    .tp_dealloc = (destructor)Row_dealloc,
    .tp_repr = Row_repr,
    .tp_as_sequence = &Row_as_sequence,
    .tp_as_mapping = &Row_as_mapping,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_richcompare = Row_richcompare,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A row of the events table (tables.COLUMNS order), read from the batch's RowBinary on demand.",
};

/* ---- the batch driver ------------------------------------------------------------------------------- */

typedef struct {
    Py_ssize_t off, text_lo, text_len, at, size;
    PyObject *lineage; /* owned */
    int has_parent;
} RowRec;

/* The contexts' keys of this batch by (lineage, day, parent cut with the ancestors): asked of Python once each
 * (`key_for`). The parent's text is compared whole; one lineage rarely comes with more than one parent (its
 * first ancestor is most often that parent), so past MAX_PARENTS of them a batch takes the Python path. */
#define MAX_PARENTS 16
typedef struct {
    PyObject *lineage; /* owned; NULL: a free slot */
    int64_t day;
    const uint8_t *piece; /* the text cut (in the body), whose first `before` bytes are the parent's and the */
    Py_ssize_t before;    /* `,"ancestors":` after it (0: the ancestors' text alone) */
    PyObject *key;        /* owned str */
} KeySlot;

typedef struct {
    KeySlot *slots;
    size_t cap, used;
} Keys;

static void keys_free(Keys *k) {
    for (size_t i = 0; i < k->cap; i++)
        if (k->slots[i].lineage) {
            Py_DECREF(k->slots[i].lineage);
            Py_DECREF(k->slots[i].key);
        }
    PyMem_Free(k->slots);
}

static size_t key_hash(PyObject *lineage, int64_t day, size_t mask) {
    uint64_t h = ((uint64_t)(uintptr_t)lineage >> 4) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)day * 0xC2B2AE3D27D4EB4FULL;
    return (size_t)(h ^ (h >> 32)) & mask;
}

static int keys_grow(Keys *k) {
    size_t cap = k->cap ? k->cap * 2 : 256;
    KeySlot *slots = PyMem_Calloc(cap, sizeof(KeySlot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return ERROR;
    }
    for (size_t i = 0; i < k->cap; i++) {
        KeySlot *s = &k->slots[i];
        if (s->lineage) {
            size_t j = key_hash(s->lineage, s->day, cap - 1);
            while (slots[j].lineage)
                j = (j + 1) & (cap - 1);
            slots[j] = *s;
        }
    }
    PyMem_Free(k->slots);
    k->slots = slots;
    k->cap = cap;
    return 0;
}

/* The key (borrowed, in *out) of the context of (lineage, day, parent): known to this batch, or asked of
 * Python (who makes it and notes its context row when the store has no copy yet). `piece[0:len]` is the text
 * cut, its first `before` bytes the parent's part. 0, BAIL or ERROR. */
static int context_key(Keys *k, PyObject *key_for, PyObject *lineage, int64_t day, const uint8_t *piece, Py_ssize_t len,
                       Py_ssize_t before, PyObject **out) {
    if (k->cap == 0 || (k->used + 1) * 2 > k->cap)
        if (keys_grow(k))
            return ERROR;
    size_t j = key_hash(lineage, day, k->cap - 1);
    int parents = 0;
    for (; k->slots[j].lineage; j = (j + 1) & (k->cap - 1)) {
        KeySlot *ks = &k->slots[j];
        if (ks->lineage == lineage && ks->day == day) {
            if (ks->before == before && memcmp(ks->piece, piece, (size_t)before) == 0) {
                *out = ks->key;
                return 0;
            }
            if (++parents >= MAX_PARENTS)
                return BAIL;
        }
    }
    PyObject *key = PyObject_CallFunction(key_for, "OLy#n", lineage, (long long)day, (const char *)piece, len, before);
    if (key == NULL)
        return ERROR;
    if (!PyUnicode_Check(key)) {
        Py_DECREF(key);
        PyErr_SetString(PyExc_TypeError, "key_for must return a str");
        return ERROR;
    }
    Py_INCREF(lineage);
    k->slots[j] = (KeySlot){lineage, day, piece, before, key};
    k->used++;
    *out = key;
    return 0;
}

static const char HEX[] = "0123456789abcdef";

static int fill_random(uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

typedef struct {
    Parser *pr;
    const uint8_t *s;
    int64_t now;
    int cut;
    PyObject *key_for;
    Buf out;
    RowRec *recs;
    Py_ssize_t nrecs;
    Py_ssize_t cap_recs;
    Keys keys;
    uint8_t random[4096 * (ID_HEX / 2)]; /* the ids' random bytes, drawn 4096 ids at a time */
    int random_left;
} Batch;

/* An entry's parts the row needs, each held (owned references). */
typedef struct {
    PyObject *lineage, *first, *paths, *names;
    Py_ssize_t len;
    int has_key;
} Lineage;

static void lineage_hold(Lineage *l, const Entry *e) {
    l->lineage = e->lineage;
    l->first = e->first;
    l->paths = e->paths;
    l->names = e->names;
    l->len = e->len;
    l->has_key = e->has_key;
    Py_INCREF(l->lineage);
    Py_INCREF(l->first);
    Py_INCREF(l->paths);
    Py_INCREF(l->names);
}

static void lineage_release(Lineage *l) {
    Py_XDECREF(l->lineage);
    Py_XDECREF(l->first);
    Py_XDECREF(l->paths);
    Py_XDECREF(l->names);
}

static int write_row(Batch *b, Doc *d, const Env *env, Lineage *lin, Py_ssize_t text_lo, Py_ssize_t text_hi,
                     int64_t day, int64_t date);

/* One document, body[lo:hi): parsed, checked, its row written. */
static int accept_document(Batch *b, Doc *d, Py_ssize_t lo, Py_ssize_t hi) {
    Env env;
    int r;
    memset(d->caps, 0, sizeof d->caps);
    d->i = lo;
    d->end = hi;
    d->anc_key = -1;
    d->escaped = 0;
    d->free_max = 0;
    d->entry = NULL;
    env.ntags = 0;
    env.version_is_int = 0;
    memset(env.f, 0, sizeof env.f);
    skip_ws(d);
    if (peek(d) != '{')
        return BAIL;
    /* an envelope when its first key is one of the envelope's (the two sets of keys are apart) */
    Doc probe = *d;
    probe.i++;
    skip_ws(&probe);
    Py_ssize_t kpos, klen;
    int is_env = peek(&probe) == '"' && !scan_string(&probe, &kpos, &klen, NULL, 0) && env_key(d->s + kpos, klen) >= 0;
    Py_ssize_t text_lo = lo, text_hi = hi;
    if (is_env) {
        if ((r = parse_envelope(d, &env)))
            return r;
        text_lo = env.event_lo;
        text_hi = env.event_hi;
    } else if ((r = parse_object(d, 0)))
        return r;
    skip_ws(d);
    if (d->i != hi)
        return BAIL;

    const uint8_t *s = d->s;
    const Cap *c = d->caps;
    int64_t date = b->now;
    if (c[C_DATE].set && date_time(s + c[C_DATE].pos, c[C_DATE].len, &date))
        return BAIL;
    int64_t day = date >= 0 ? date / NS_PER_DAY : -1;
    if (day < 0 || day > 65535)
        return BAIL; /* outside RowBinary's Date: the Python path says what to do */

    /* What the row needs of the ancestors' entry, held: a callback may let another thread change the
     * registry (the entry may go, its Lineage and bytes stay). */
    Entry *e = d->entry;
    Lineage lin = {NULL, NULL, NULL, NULL, 0, 0};
    if (e != NULL)
        lineage_hold(&lin, e);
    r = write_row(b, d, &env, &lin, text_lo, text_hi, day, date);
    lineage_release(&lin);
    return r;
}

static int write_row(Batch *b, Doc *d, const Env *env, Lineage *lin, Py_ssize_t text_lo, Py_ssize_t text_hi,
                     int64_t day, int64_t date) {
    const uint8_t *s = d->s;
    const Cap *c = d->caps;
    PyObject *key = NULL;
    Py_ssize_t at = 0, size = 0;
    if (lin->lineage != NULL && lin->len >= MIN_CUT && b->cut) {
        /* cut where `intake._offset` cuts: after the first `"ancestors":` of the event's text when the
         * text is there (the common case: this value), else at its first occurrence in the event's text */
        Py_ssize_t pos = c[C_ANCESTORS].pos, len = lin->len;
        /* (the keys noted while parsing are all the `"ancestors":` of the text, but for those in strings
         * with escapes and in the ancestors' own text, which is not parsed here) */
        if (d->escaped || lin->has_key) {
            const uint8_t *k = memmem(s + text_lo, (size_t)(text_hi - text_lo), "\"ancestors\":", 12);
            d->anc_key = k ? k - s : -1;
        }
        Py_ssize_t k = d->anc_key;
        if (k >= text_lo && k + 12 != pos) {
            if (k + 12 + len <= text_hi && memcmp(s + k + 12, s + pos, (size_t)len) == 0)
                pos = k + 12;
            else
                k = -1;
        }
        if (k < text_lo) {
            const uint8_t *first = memmem(s + text_lo, (size_t)(pos + len - text_lo), s + pos, (size_t)len);
            pos = first ? first - s : pos;
        }
        /* the parent's text goes with the ancestors' when it is right before them (`intake._parent_before`) */
        Py_ssize_t before = 0, sep = pos - 13, n = c[C_PARENT].len;
        if (c[C_PARENT].set && n > 0 && sep > text_lo && sep - n >= text_lo &&
            memcmp(s + sep, ",\"ancestors\":", 13) == 0 &&
            (c[C_PARENT].pos == sep - n || memcmp(s + sep - n, s + c[C_PARENT].pos, (size_t)n) == 0))
            before = n + 13;
        int r = context_key(&b->keys, b->key_for, lin->lineage, day, s + pos - before, len + before, before, &key);
        if (r)
            return r;
        at = pos - before - text_lo;
        size = len + before;
    }

    Buf *o = &b->out;
    size_t off = o->n;
    char id[ID_HEX];
    if (b->random_left == 0) {
        if (fill_random(b->random, sizeof b->random))
            return BAIL; /* no random source: the Python path's (which raises) */
        b->random_left = 4096;
    }
    const uint8_t *rnd = b->random + --b->random_left * (ID_HEX / 2);
    for (int k = 0; k < ID_HEX / 2; k++) {
        uint8_t x = rnd[k];
        id[2 * k] = HEX[x >> 4];
        id[2 * k + 1] = HEX[x & 15];
    }
    if (buf_reserve(o, 10))
        return ERROR;
    put_le(o, (uint64_t)day, 2);
    put_le(o, (uint64_t)date, 8);
    if (put_str(o, id, ID_HEX) || put_cap(o, s, &c[C_EVT_NAME]) || put_cap(o, s, &c[C_EVT_OUTCOME]) ||
        put_cap(o, s, &env->f[E_HOST]) || put_cap(o, s, &env->f[E_RULE_ID]))
        return ERROR;
    if (env->version_is_int ? put_str(o, env->version, (Py_ssize_t)strlen(env->version))
                            : put_cap(o, s, &env->f[E_RULE_VERSION]))
        return ERROR;
    if (put_cap(o, s, &env->f[E_POLICY]) || put_cap(o, s, &env->f[E_AGENT_VERSION]) || buf_reserve(o, 10))
        return ERROR;
    put_leb(o, (uint64_t)env->ntags);
    for (int t = 0; t < env->ntags; t++)
        if (put_str(o, s + env->tags[t][0], env->tags[t][1]))
            return ERROR;
    int creds = c[C_CRED].set, parent = c[C_PARENT].set;
    int64_t uid = creds ? c[C_CRED_UID].num : c[C_P_UID].num;
    if (buf_reserve(o, 24))
        return ERROR;
    put_le(o, (uint64_t)c[C_P_PID].num, 8);
    put_le(o, (uint64_t)c[C_P_PPID].num, 8);
    put_le(o, (uint64_t)uid, 8);
    const Cap *user = creds && nonempty(&c[C_CRED_USER]) ? &c[C_CRED_USER] : &c[C_P_USER];
    if (put_cap(o, s, user) || put_cap(o, s, &c[C_P_COMM]) || put_cap(o, s, &c[C_P_EXE_PATH]) ||
        put_name(o, s, &c[C_P_EXE_NAME], &c[C_P_EXE_PATH]))
        return ERROR;
    int err;
    if (parent)
        err = put_cap(o, s, &c[C_PARENT_EXE_PATH]);
    else if (lin->lineage)
        err = put_str(o, PyBytes_AS_STRING(lin->first), PyBytes_GET_SIZE(lin->first));
    else
        err = put_str(o, "", 0);
    if (err)
        return ERROR;
    if (lin->lineage)
        err = put_raw(o, PyBytes_AS_STRING(lin->paths), PyBytes_GET_SIZE(lin->paths)) ||
              put_raw(o, PyBytes_AS_STRING(lin->names), PyBytes_GET_SIZE(lin->names));
    else
        err = put_raw(o, "\0\0", 2); /* two empty arrays */
    if (err)
        return ERROR;
    const Cap *container = nonempty(&c[C_E_CONTAINER]) ? &c[C_E_CONTAINER] : &c[C_P_CONTAINER];
    if (put_cap(o, s, container) || put_cap(o, s, &c[C_F_PATH]) || put_name(o, s, &c[C_F_NAME], &c[C_F_PATH]) ||
        put_cap(o, s, &c[C_DEST_PATH]))
        return ERROR;
    if (key != NULL) {
        Py_ssize_t klen;
        const char *k = PyUnicode_AsUTF8AndSize(key, &klen);
        if (k == NULL || put_str(o, k, klen))
            return ERROR;
    } else if (put_str(o, "", 0))
        return ERROR;
    /* context_at, then the event's text without the cut */
    Py_ssize_t text_len = text_hi - text_lo;
    if (buf_reserve(o, 20 + (size_t)text_len))
        return ERROR;
    put_le(o, (uint64_t)at, 8);
    put_leb(o, (uint64_t)(text_len - size));
    memcpy(o->p + o->n, s + text_lo, (size_t)(size ? at : text_len));
    o->n += (size_t)(size ? at : text_len);
    if (size) {
        memcpy(o->p + o->n, s + text_lo + at + size, (size_t)(text_len - at - size));
        o->n += (size_t)(text_len - at - size);
    }

    if (b->nrecs == b->cap_recs) {
        Py_ssize_t cap = b->cap_recs ? b->cap_recs * 2 : 1024;
        RowRec *recs = PyMem_Realloc(b->recs, (size_t)cap * sizeof(RowRec));
        if (recs == NULL) {
            PyErr_NoMemory();
            return ERROR;
        }
        b->recs = recs;
        b->cap_recs = cap;
    }
    RowRec *rec = &b->recs[b->nrecs++];
    *rec = (RowRec){(Py_ssize_t)off, text_lo, text_len, at, size, lin->lineage, parent};
    Py_XINCREF(lin->lineage);
    return 0;
}

static int is_blank(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

/* Parser.accept(body, lines, max_documents, max_depth, now, cut, key_for) -> (rows, encoded) | None */
static PyObject *Parser_accept(Parser *pr, PyObject *args) {
    PyObject *body, *key_for;
    int lines, max_depth, cut;
    Py_ssize_t max_documents;
    long long now;
    if (!PyArg_ParseTuple(args, "O!pniLpO", &PyBytes_Type, &body, &lines, &max_documents, &max_depth, &now, &cut,
                          &key_for))
        return NULL;
    if (pr->nodes == NULL || pr->learn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the Parser is not initialized");
        return NULL;
    }
    const uint8_t *s = (const uint8_t *)PyBytes_AS_STRING(body);
    Py_ssize_t n = PyBytes_GET_SIZE(body);

    Batch *b = PyMem_Calloc(1, sizeof(Batch));
    if (b == NULL)
        return PyErr_NoMemory();
    *b = (Batch){.pr = pr, .s = s, .now = now, .cut = cut, .key_for = key_for};
    PyObject *result = NULL;
    int r = 0;
    Doc d;
    d.s = s;
    d.pr = pr;
    d.max_depth = max_depth;
    d.free_limit = max_depth < FREE_DEPTH_CAP ? max_depth : FREE_DEPTH_CAP;
    /* The output's size guessed from the last body's (bytes out per byte of body, in 1/1024ths), a quarter
     * more: one allocation (growing it moves it), not much more than is written (the kernel maps only what
     * is touched), and in huge pages when large (see buf_reserve; the final size is cut to fit). */
    size_t guess = (size_t)((double)n * (pr->out_ratio ? pr->out_ratio : 1024) / 1024 * 1.25) + 4096;
    if (buf_reserve(&b->out, guess)) {
        r = ERROR;
        goto done;
    }
    if (lines) {
        /* the documents: the lines that are not blank (`bodies._line_views`); more than max_documents: the
         * Python path says so */
        for (Py_ssize_t start = 0; start < n && r == 0;) {
            const uint8_t *nl = memchr(s + start, '\n', (size_t)(n - start));
            Py_ssize_t end = nl ? nl - s : n;
            for (Py_ssize_t k = start; k < end; k++)
                if (!is_blank(s[k])) {
                    r = b->nrecs >= max_documents ? BAIL : accept_document(b, &d, start, end);
                    break;
                }
            start = end + 1;
        }
    } else {
        /* one object (an array, or anything else: the Python path) */
        Py_ssize_t k = 0;
        while (k < n && is_blank(s[k]))
            k++;
        r = k >= n || s[k] != '{' || max_documents < 1 ? BAIL : accept_document(b, &d, 0, n);
    }
    if (r)
        goto done;
    if (n > 0) /* (at most twice the body: a small body naming a large known lineage says little) */
        pr->out_ratio = b->out.n >= (size_t)n * 2 ? 2048 : (unsigned)((double)b->out.n * 1024 / (double)n) + 1;
    if (_PyBytes_Resize(&b->out.obj, (Py_ssize_t)b->out.n)) {
        b->out.obj = NULL;
        goto done;
    }
    PyObject *encoded = b->out.obj;
    PyObject *rows = PyList_New(b->nrecs);
    for (Py_ssize_t k = 0; rows && k < b->nrecs; k++) {
        Row *row = PyObject_New(Row, &RowType);
        if (row == NULL) {
            Py_CLEAR(rows);
            break;
        }
        RowRec *rec = &b->recs[k];
        Py_INCREF(body);
        row->body = body;
        Py_INCREF(encoded);
        row->encoded = encoded;
        row->lineage = rec->lineage; /* the record's reference moves to the row */
        rec->lineage = NULL;
        row->off = rec->off;
        row->text_lo = rec->text_lo;
        row->text_len = rec->text_len;
        row->at = rec->at;
        row->size = rec->size;
        row->has_parent = rec->has_parent;
        PyList_SET_ITEM(rows, k, (PyObject *)row);
    }
    if (rows)
        result = Py_BuildValue("(NO)", rows, encoded);

done:
    for (Py_ssize_t k = 0; k < b->nrecs; k++)
        Py_XDECREF(b->recs[k].lineage);
    PyMem_Free(b->recs);
    Py_XDECREF(b->out.obj);
    keys_free(&b->keys);
    PyMem_Free(b);
    if (r == BAIL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return result;
}

/* ---- the Parser type: built from the schema's tables ------------------------------------------------ */

static void Parser_free_nodes(Parser *pr) {
    for (int k = 0; k < pr->nnodes; k++) {
        for (int j = 0; j < pr->nodes[k].n; j++)
            PyMem_Free(pr->nodes[k].props[j].key);
        PyMem_Free(pr->nodes[k].props);
    }
    PyMem_Free(pr->nodes);
    pr->nodes = NULL;
    pr->nnodes = 0;
}

static void Parser_dealloc(Parser *pr) {
    registry_clear(pr);
    known_clear(pr);
    Parser_free_nodes(pr);
    Py_XDECREF(pr->learn);
    Py_TYPE(pr)->tp_free((PyObject *)pr);
}

/* Parser(nodes, learn, cut_class): nodes[0] is the event; each node a list of properties
 * (key: bytes, kind, item kind, child node, required, capture slot or -1). */
static int Parser_init(Parser *pr, PyObject *args, PyObject *kw) {
    PyObject *nodes, *learn, *cut;
    if (!PyArg_ParseTuple(args, "O!OO", &PyList_Type, &nodes, &learn, &cut))
        return -1;
    if (pr->nodes != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Parser is initialized once");
        return -1;
    }
    Py_ssize_t nn = PyList_GET_SIZE(nodes);
    if (nn < 1 || nn > 10000) {
        PyErr_SetString(PyExc_ValueError, "between 1 and 10000 nodes");
        return -1;
    }
    pr->nodes = PyMem_Calloc((size_t)nn, sizeof(Node));
    if (pr->nodes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    pr->nnodes = (int)nn;
    for (Py_ssize_t k = 0; k < nn; k++) {
        PyObject *props = PyList_GET_ITEM(nodes, k);
        if (!PyList_Check(props) || PyList_GET_SIZE(props) > MAX_PROPS) {
            PyErr_SetString(PyExc_ValueError, "a node is a list of at most 64 properties");
            return -1;
        }
        Node *nd = &pr->nodes[k];
        nd->props = PyMem_Calloc((size_t)PyList_GET_SIZE(props) + 1, sizeof(Prop));
        if (nd->props == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(props); j++) {
            const char *key;
            Py_ssize_t keylen;
            int kind, item, child, required, slot, cached;
            if (!PyArg_ParseTuple(PyList_GET_ITEM(props, j), "y#iiipip", &key, &keylen, &kind, &item, &child,
                                  &required, &slot, &cached))
                return -1;
            if (cached && kind != K_OBJECT) {
                PyErr_SetString(PyExc_ValueError, "only objects are cached");
                return -1;
            }
            int needs_child = kind == K_OBJECT || (kind == K_ARRAY && item == K_OBJECT);
            if (kind < K_STRING || kind > K_ANCESTORS || (needs_child && (child < 0 || child >= nn)) ||
                (kind == K_ARRAY && (item < K_STRING || item > K_OBJECT || item == K_ARRAY)) || slot < -1 ||
                slot >= NCAPS) {
                PyErr_SetString(PyExc_ValueError, "a property's kind, child or slot is out of range");
                return -1;
            }
            for (Py_ssize_t c = 0; c < keylen; c++)
                if (key[c] < 0x20 || key[c] > 0x7E || key[c] == '"' || key[c] == '\\') {
                    PyErr_SetString(PyExc_ValueError, "a key must be printable ASCII without quote or backslash");
                    return -1;
                }
            Prop *p = &nd->props[nd->n];
            p->key = PyMem_Malloc((size_t)keylen + 1);
            if (p->key == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            memcpy(p->key, key, (size_t)keylen);
            p->keylen = keylen;
            p->kind = kind;
            p->item = item;
            p->child = needs_child ? child : 0;
            p->slot = slot;
            p->cached = cached;
            if (required)
                nd->required |= (uint64_t)1 << nd->n;
            nd->n++;
        }
    }
    /* the tables describe a tree (no cycle: the parser's recursion is bounded by the schema's depth) */
    int bad = 0;
    for (Py_ssize_t k = 0; k < nn && !bad; k++)
        for (int j = 0; j < pr->nodes[k].n; j++) {
            const Prop *p = &pr->nodes[k].props[j];
            if ((p->kind == K_OBJECT || (p->kind == K_ARRAY && p->item == K_OBJECT)) && p->child <= k)
                bad = 1; /* children come after their parent: no cycle */
        }
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "each node's children must come after it");
        return -1;
    }
    /* One ancestors property, in no cached object: a document's one registry entry (`Doc.entry`, its cap
     * C_ANCESTORS) is the row's, and a known object's text is matched without calling back into Python. */
    char *under = PyMem_Calloc((size_t)nn, 1); /* the nodes inside a cached object */
    if (under == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int ancestors = 0;
    for (Py_ssize_t k = 0; k < nn; k++)
        for (int j = 0; j < pr->nodes[k].n; j++) {
            const Prop *p = &pr->nodes[k].props[j];
            if (p->kind == K_ANCESTORS && (ancestors++ || under[k]))
                bad = 1;
            if (p->kind == K_OBJECT || (p->kind == K_ARRAY && p->item == K_OBJECT))
                under[p->child] |= under[k] | (char)p->cached;
        }
    PyMem_Free(under);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "at most one ancestors property, and none inside a cached object");
        return -1;
    }
    Py_INCREF(learn);
    Py_XSETREF(pr->learn, learn);
    Py_INCREF(cut);
    Py_XSETREF(Cut_class, cut);
    return 0;
}

static PyObject *Parser_registered(Parser *pr, PyObject *unused) {
    Py_ssize_t count = 0;
    for (int b = 0; b < NBUCKETS; b++)
        for (Entry *e = pr->buckets[b]; e; e = e->next)
            count++;
    Py_ssize_t known = 0;
    for (int b = 0; b < NBUCKETS; b++)
        for (Known *k = pr->known[b]; k; k = k->next)
            known++;
    return Py_BuildValue("(nnnn)", count + pr->nshorts, (Py_ssize_t)pr->bytes, known, (Py_ssize_t)pr->known_bytes);
}

static PyObject *Parser_clear(Parser *pr, PyObject *unused) {
    registry_clear(pr);
    known_clear(pr);
    Py_RETURN_NONE;
}

static PyMethodDef Parser_methods[] = {
    {"accept", (PyCFunction)Parser_accept, METH_VARARGS,
     "accept(body, lines, max_documents, max_depth, now, cut, key_for) -> (rows, encoded) | None"},
    {"registered", (PyCFunction)Parser_registered, METH_NOARGS, "(texts, bytes) of the ancestors registry, then of the objects registry"},
    {"clear", (PyCFunction)Parser_clear, METH_NOARGS, "forget the ancestors texts known"},
    {NULL},
};

static PyTypeObject ParserType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "opencws.backend._intake.Parser",
    .tp_basicsize = sizeof(Parser),
    .tp_dealloc = (destructor)Parser_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The schema's tables and the ancestors registry; accept() takes a body.",
    .tp_methods = Parser_methods,
    .tp_init = (initproc)Parser_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_intake",
                                    "The intake's hot path in one compiled pass (see compiled_intake).", -1};

PyMODINIT_FUNC PyInit__intake(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL || PyType_Ready(&ParserType) < 0 || PyType_Ready(&RowType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *caps = PyTuple_New(NCAPS), *cols = PyTuple_New(NCOLS);
    for (int k = 0; caps && k < NCAPS; k++)
        PyTuple_SET_ITEM(caps, k, PyUnicode_FromString(CAP_PATHS[k]));
    for (int k = 0; cols && k < NCOLS; k++)
        PyTuple_SET_ITEM(cols, k, PyUnicode_FromString(COLUMN_NAMES[k]));
    Py_INCREF(&ParserType);
    Py_INCREF(&RowType);
    if (caps == NULL || cols == NULL || PyModule_AddObject(m, "CAPTURES", caps) ||
        PyModule_AddObject(m, "COLUMNS", cols) || PyModule_AddObject(m, "Parser", (PyObject *)&ParserType) ||
        PyModule_AddObject(m, "Row", (PyObject *)&RowType) || PyModule_AddIntConstant(m, "K_STRING", K_STRING) ||
        PyModule_AddIntConstant(m, "K_INT", K_INT) || PyModule_AddIntConstant(m, "K_BOOL", K_BOOL) ||
        PyModule_AddIntConstant(m, "K_DATE", K_DATE) || PyModule_AddIntConstant(m, "K_OBJECT", K_OBJECT) ||
        PyModule_AddIntConstant(m, "K_ARRAY", K_ARRAY) || PyModule_AddIntConstant(m, "K_ANY", K_ANY) ||
        PyModule_AddIntConstant(m, "K_ANCESTORS", K_ANCESTORS) || PyModule_AddIntConstant(m, "MIN_CUT", MIN_CUT)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

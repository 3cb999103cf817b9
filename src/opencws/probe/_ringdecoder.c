/* The reader's hot loop in C: records.decode_ring without a Python bytecode per field; and the ring's positions
 * read and written atomically (load_position, store_position: ringbuf.py).
 *
 * Same contract as the Python loop in records.py (which stays as the reference and the fallback): walk the
 * records of a copy of the ring's data, turn every well-formed file record of a type with a view into a view
 * object (event + file view, with pid, file, _b, _o, path and inode set), hand every other record to
 * records.decode, and collect the DecodeError reasons. The record layout is not written here: configure()
 * receives every offset from records.py, the one place that knows it (a mirror of bpf/probe.h).
 *
 * Objects are made with the view class's tp_alloc and their slots set through the slot descriptors the classes
 * already have (public API, no attribute lookup per field). Every read is bounds-checked against the buffer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if !PY_LITTLE_ENDIAN
#error "the ring holds the host's byte order and records.py reads it little-endian"
#endif

#define BUSY (1u << 31)
#define DISCARD (1u << 30)
#define MAX_KIND 8
#define MAX_TYPE 256

/* Everything configure() gives, with strong references; replaced as a whole, never while a decode runs. */
typedef struct {
    Py_ssize_t kt, size, pid, extra, ino, flags, l0, l1; /* from the start of a record's 8-byte ring header */
    Py_ssize_t file_end;                                 /* header + file body: where the paths start */
    Py_ssize_t at_file, at_path;                         /* the first file_info, the first path (from ring header) */
    Py_ssize_t pad;                                      /* bytes read from a record's start whatever its size */
    uint32_t path_max, extra_max, present, has_inode;
    Py_ssize_t hflags, trailer_size;                     /* a record whose header flags have trailer_flag ends */
    uint32_t trailer_flag;                               /* with trailer_size bytes (the dd ids): 0, none */
    PyTypeObject *view_of[MAX_KIND][MAX_TYPE];           /* kind, type -> view class */
    PyTypeObject *file_view;
    PyObject *d_pid, *d_file, *d_b, *d_o, *d_path, *d_inode; /* slot descriptors (member descriptors) */
    PyObject *fallback;                                      /* records.decode */
    PyObject *decode_error;                                  /* records.DecodeError */
} Config;

static Config C;  /* all zero until configured */
static int busy;  /* a decode_ring is running (it calls Python code, which could call configure) */

static void config_clear(Config *c)
{
    for (int k = 0; k < MAX_KIND; k++)
        for (int t = 0; t < MAX_TYPE; t++)
            Py_CLEAR(c->view_of[k][t]);
    Py_CLEAR(c->file_view);
    Py_CLEAR(c->d_pid);
    Py_CLEAR(c->d_file);
    Py_CLEAR(c->d_b);
    Py_CLEAR(c->d_o);
    Py_CLEAR(c->d_path);
    Py_CLEAR(c->d_inode);
    Py_CLEAR(c->fallback);
    Py_CLEAR(c->decode_error);
}

static inline uint32_t u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t u16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint64_t u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Set a slot through its descriptor; steals `value` (which may be NULL after a failed creation). */
static int put(PyObject *descr, PyObject *obj, PyObject *value)
{
    if (value == NULL)
        return -1;
    int r = Py_TYPE(descr)->tp_descr_set(descr, obj, value);
    Py_DECREF(value);
    return r;
}

/* The member descriptor of a __slots__ entry (a new reference), or NULL with TypeError. */
static PyObject *slot_descriptor(PyObject *cls, const char *name)
{
    PyObject *d = PyObject_GetAttrString(cls, name); /* on a class, a slot's attribute is its descriptor */
    if (d != NULL && !Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%R.%s is not a slot", cls, name);
        Py_CLEAR(d);
    }
    return d;
}

/* A class whose instances tp_alloc makes as calling it would (a GC heap type without __dict__), or -1. */
static int check_view_class(PyObject *cls, PyObject *base)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, (PyTypeObject *)base)) {
        PyErr_Format(PyExc_TypeError, "%R is not a subclass of %R", cls, base);
        return -1;
    }
    PyTypeObject *t = (PyTypeObject *)cls;
    if (!PyType_HasFeature(t, Py_TPFLAGS_HEAPTYPE) || !PyType_HasFeature(t, Py_TPFLAGS_HAVE_GC)
        || t->tp_dictoffset != 0 || t->tp_new != PyBaseObject_Type.tp_new) {
        PyErr_Format(PyExc_TypeError, "%R must be a __slots__ class with object's __new__", cls);
        return -1;
    }
    return 0;
}

static int check_offsets(const Config *c)
{
    struct { Py_ssize_t off, width; } reads[] = {
        {0, 4}, {c->kt, 4}, {c->size, 4}, {c->pid, 4}, {c->extra, 4}, {c->ino, 8}, {c->flags, 4}, {c->l0, 4},
        {c->l1, 4}, {c->hflags, 4},
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        if (reads[i].off < 0 || reads[i].off + reads[i].width > c->pad) {
            PyErr_Format(PyExc_ValueError, "offset %zd (+%zd) outside the %zd bytes read of every record",
                         reads[i].off, reads[i].width, c->pad);
            return -1;
        }
    if (c->file_end <= 0 || c->at_path != 8 + c->file_end || c->at_file < 0 || c->path_max > 0xffff) {
        PyErr_SetString(PyExc_ValueError, "inconsistent record layout");
        return -1;
    }
    return 0;
}

static PyObject *configure(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"offsets", "limits", "views", "file_view", "event_class", "file_event_class",
                             "decode", "decode_error", "trailer", NULL};
    PyObject *views, *fv, *event_cls, *file_event_cls, *dec, *err;
    Config n;
    memset(&n, 0, sizeof n);
    if (busy) {
        PyErr_SetString(PyExc_RuntimeError, "configure() called while decode_ring runs");
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "(nnnnnnnnnnnn)(IIII)O!O!OOOO|(nIn)", kwlist,
                                     &n.kt, &n.size, &n.pid, &n.extra, &n.ino, &n.flags, &n.l0, &n.l1,
                                     &n.file_end, &n.at_file, &n.at_path, &n.pad,
                                     &n.path_max, &n.extra_max, &n.present, &n.has_inode,
                                     &PyDict_Type, &views, &PyType_Type, &fv, &event_cls, &file_event_cls,
                                     &dec, &err, &n.hflags, &n.trailer_flag, &n.trailer_size))
        return NULL;
    if (check_offsets(&n) < 0 || check_view_class(fv, (PyObject *)&PyBaseObject_Type) < 0)
        return NULL;
    if (!PyCallable_Check(dec) || !PyExceptionClass_Check(err)) {
        PyErr_SetString(PyExc_TypeError, "decode must be callable and decode_error an exception class");
        return NULL;
    }
    PyObject *key, *value;
    Py_ssize_t i = 0;
    while (PyDict_Next(views, &i, &key, &value)) {
        unsigned long kt = PyLong_AsUnsignedLong(key);
        if (kt == (unsigned long)-1 && PyErr_Occurred())
            goto fail;
        if ((kt & 0xffff) >= MAX_KIND || (kt >> 16) >= MAX_TYPE) {
            PyErr_Format(PyExc_ValueError, "view key %R: kind or type out of range", key);
            goto fail;
        }
        if (check_view_class(value, file_event_cls) < 0)
            goto fail;
        Py_INCREF(value);
        Py_XSETREF(n.view_of[kt & 0xffff][kt >> 16], (PyTypeObject *)value);
    }
    Py_INCREF(fv);
    n.file_view = (PyTypeObject *)fv;
    Py_INCREF(dec);
    n.fallback = dec;
    Py_INCREF(err);
    n.decode_error = err;
    if (!(n.d_pid = slot_descriptor(event_cls, "pid")) || !(n.d_file = slot_descriptor(file_event_cls, "file"))
        || !(n.d_b = slot_descriptor(fv, "_b")) || !(n.d_o = slot_descriptor(fv, "_o"))
        || !(n.d_path = slot_descriptor(fv, "path")) || !(n.d_inode = slot_descriptor(fv, "inode")))
        goto fail;
    Config old = C;
    C = n;
    config_clear(&old);
    Py_RETURN_NONE;
fail:
    config_clear(&n);
    return NULL;
}

/* The event view of a checked file record at `rec` (its ring header), `owner` the bytes it is in. */
static PyObject *make_view(PyTypeObject *cls, PyObject *owner, const unsigned char *b, Py_ssize_t rec,
                           uint32_t l0, uint32_t fl0)
{
    PyObject *o = cls->tp_alloc(cls, 0);
    if (o == NULL)
        return NULL;
    PyObject *f = C.file_view->tp_alloc(C.file_view, 0);
    if (f == NULL)
        goto fail;
    Py_INCREF(f);
    if (put(C.d_file, o, f) < 0) {
        Py_DECREF(f);
        goto fail;
    }
    /* each value is made where it is put (put steals it): a failure leaves nothing behind */
    int bad = put(C.d_pid, o, PyLong_FromUnsignedLong(u32(b + rec + C.pid))) < 0
        || put(C.d_b, f, Py_NewRef(owner)) < 0
        || put(C.d_o, f, PyLong_FromSsize_t(rec + C.at_file)) < 0
        || put(C.d_path, f, PyUnicode_DecodeUTF8((const char *)b + rec + C.at_path, l0, "surrogateescape")) < 0
        || put(C.d_inode, f, fl0 & C.has_inode ? PyLong_FromUnsignedLongLong(u64(b + rec + C.ino))
                                                : Py_NewRef(Py_None)) < 0;
    Py_DECREF(f);
    if (!bad) {
        /* Untracked by the cycle collector, as CPython does with tuples of atoms: as built, a view refers to
         * nothing but bytes, ints, str, None and its file view (its other fields are read-only properties), so it
         * cannot be part of a cycle, and the collector no longer walks every event a batch or a queue holds
         * (30% of the reader's time otherwise). The writable slots must stay so: records.py says so, and a test
         * lists them. */
        PyObject_GC_UnTrack(f);
        PyObject_GC_UnTrack(o);
        return o;
    }
fail:
    Py_DECREF(o);
    return NULL;
}

/* records.decode on one record's bytes: appends the event, or the DecodeError's reason; -1 on any other error. */
static int decode_one(PyObject *out, PyObject *errors, const unsigned char *rec, uint32_t n, int lazy)
{
    PyObject *data = PyBytes_FromStringAndSize((const char *)rec, n);
    if (data == NULL)
        return -1;
    PyObject *event = PyObject_CallFunctionObjArgs(C.fallback, data, lazy ? Py_True : Py_False, NULL);
    Py_DECREF(data);
    if (event != NULL) {
        int r = PyList_Append(out, event);
        Py_DECREF(event);
        return r;
    }
    if (!PyErr_ExceptionMatches(C.decode_error))
        return -1;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
#endif
    PyObject *reason = PyObject_Str(exc);
    Py_XDECREF(exc);
    if (reason == NULL)
        return -1;
    int r = PyList_Append(errors, reason);
    Py_DECREF(reason);
    return r;
}

PyDoc_STRVAR(decode_ring_doc,
"decode_ring(buf: bytes, end, lazy=True, stop=None) -> (events, consumed, errors)\n\n"
"records.decode_ring in C (see its docstring); configure() must have been called.");

static PyObject *decode_ring(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"buf", "end", "lazy", "stop", NULL};
    PyObject *owner;
    Py_ssize_t end, stop;
    int lazy = 1;
    PyObject *stop_obj = Py_None;
    if (C.fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "decode_ring called before configure()");
        return NULL;
    }
    /* bytes only: the views keep it and read it later, it must not change */
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Sn|pO", kwlist, &owner, &end, &lazy, &stop_obj))
        return NULL;
    if (stop_obj == Py_None) {
        stop = end;
    } else {
        stop = PyLong_AsSsize_t(stop_obj);
        if (stop == -1 && PyErr_Occurred())
            return NULL;
    }
    Py_ssize_t len = PyBytes_GET_SIZE(owner);
    if (end < 0 || end > len - C.pad) {
        PyErr_Format(PyExc_ValueError, "end %zd: the buffer (%zd bytes) must extend %zd bytes past it",
                     end, len, C.pad);
        return NULL;
    }
    if (stop > end)
        stop = end;
    PyObject *out = PyList_New(0), *errors = PyList_New(0), *result = NULL;
    if (out == NULL || errors == NULL)
        goto done;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(owner);
    Py_ssize_t pos = 0;
    busy++;
    while (pos < stop) { /* pos < end: the fixed fields at pos .. pos + C.pad are inside the buffer */
        uint32_t ln = u32(b + pos);
        if (ln >= DISCARD) { /* BUSY (not committed yet: stop here) or DISCARD */
            if (ln & BUSY)
                break;
            pos += ((ln & (DISCARD - 1)) + 15) & ~(Py_ssize_t)7;
            continue;
        }
        uint32_t kt = u32(b + pos + C.kt);
        PyTypeObject *cls = NULL;
        if (lazy && (kt & 0xffff) < MAX_KIND && (kt >> 16) < MAX_TYPE)
            cls = C.view_of[kt & 0xffff][kt >> 16];
        int whole = pos + 8 + (Py_ssize_t)ln <= end;
        if (cls != NULL && whole) {
            uint32_t extra = u32(b + pos + C.extra), fl0 = u32(b + pos + C.flags);
            uint32_t l0 = u16(b + pos + C.l0), r0 = u16(b + pos + C.l0 + 2);
            uint32_t l1 = u16(b + pos + C.l1), r1 = u16(b + pos + C.l1 + 2);
            Py_ssize_t tail = (u32(b + pos + C.hflags) & C.trailer_flag) ? C.trailer_size : 0;
            if (u32(b + pos + C.size) == ln && ln == C.file_end + l0 + l1 + extra + tail && l0 <= C.path_max
                && l1 <= C.path_max && extra <= C.extra_max && r0 <= l0 && r1 <= l1 && (fl0 & C.present)) {
                PyObject *o = make_view(cls, owner, b, pos, l0, fl0);
                if (o == NULL || PyList_Append(out, o) < 0) {
                    Py_XDECREF(o);
                    goto stopped;
                }
                Py_DECREF(o);
                pos += ((Py_ssize_t)ln + 15) & ~(Py_ssize_t)7;
                continue;
            }
        }
        if (!whole)
            break; /* not wholly copied: the next read has it */
        if (decode_one(out, errors, b + pos + 8, ln, lazy) < 0)
            goto stopped;
        pos += ((Py_ssize_t)ln + 15) & ~(Py_ssize_t)7;
    }
    result = Py_BuildValue("(OnO)", out, pos, errors);
stopped:
    busy--;
done:
    Py_XDECREF(out);
    Py_XDECREF(errors);
    return result;
}

/* The ring's positions (consumer page, producer page) are u64s the kernel reads and writes while BPF programs
 * run: each access here is one atomic 8-byte access, an acquire load and a release store (what libbpf's reader
 * does with smp_load_acquire/smp_store_release): the kernel never sees a torn or zeroed consumer position, and the
 * records before a producer position read are seen whole, on any architecture. */
static const unsigned char *position_at(Py_buffer *b, Py_ssize_t offset)
{
    if (offset < 0 || offset > b->len - 8) {
        PyErr_Format(PyExc_ValueError, "offset %zd: 8 bytes do not fit in the %zd bytes of the buffer", offset, b->len);
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)b->buf + offset;
    if ((uintptr_t)p % 8) {
        PyErr_Format(PyExc_ValueError, "offset %zd: not 8-byte aligned (no atomic access there)", offset);
        return NULL;
    }
    return p;
}

static PyObject *load_position(PyObject *self, PyObject *args)
{
    Py_buffer b;
    Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "y*n:load_position", &b, &offset))
        return NULL;
    const unsigned char *p = position_at(&b, offset);
    PyObject *r = p ? PyLong_FromUnsignedLongLong(__atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE)) : NULL;
    PyBuffer_Release(&b);
    return r;
}

static PyObject *store_position(PyObject *self, PyObject *args)
{
    Py_buffer b;
    Py_ssize_t offset;
    PyObject *value;
    if (!PyArg_ParseTuple(args, "w*nO!:store_position", &b, &offset, &PyLong_Type, &value))
        return NULL;
    unsigned long long v = PyLong_AsUnsignedLongLong(value);
    const unsigned char *p = (v == (unsigned long long)-1 && PyErr_Occurred()) ? NULL : position_at(&b, offset);
    if (p != NULL)
        __atomic_store_n((uint64_t *)p, (uint64_t)v, __ATOMIC_RELEASE);
    PyBuffer_Release(&b);
    if (p == NULL)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"load_position", load_position, METH_VARARGS,
     "load_position(buffer, offset) -> int\n\nThe u64 at `offset` (8-byte aligned), read with one atomic load "
     "(acquire)."},
    {"store_position", store_position, METH_VARARGS,
     "store_position(buffer, offset, value)\n\nWrite the u64 at `offset` (8-byte aligned, writable buffer) with one "
     "atomic store (release)."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(offsets, limits, views, file_view, event_class, file_event_class, decode, decode_error)\n\n"
     "The record layout and the classes to build, from opencws.probe.records."},
    {"decode_ring", (PyCFunction)(void (*)(void))decode_ring, METH_VARARGS | METH_KEYWORDS, decode_ring_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ringdecoder",
    "The ring reader's hot loop in C (opencws.probe.records configures and uses it).",
    -1, /* single-phase init with static state: one configuration per process (not for subinterpreters) */
    methods,
};

PyMODINIT_FUNC PyInit__ringdecoder(void) { return PyModule_Create(&module); }

/* The reader's hot loop in C: records.decode_ring without a Python bytecode per field.
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

#define BUSY (1u << 31)
#define DISCARD (1u << 30)
#define MAX_KIND 8
#define MAX_TYPE 256

static struct {
    Py_ssize_t kt, size, pid, extra, ino, flags, l0, l1; /* from the start of a record's 8-byte ring header */
    Py_ssize_t file_end;                                 /* header + file body: where the paths start */
    Py_ssize_t at_file, at_path;                         /* the first file_info, the first path (from ring header) */
    Py_ssize_t pad;                                      /* bytes read from a record's start whatever its size */
    uint32_t path_max, extra_max, present, has_inode;
} L;

static PyTypeObject *view_of[MAX_KIND][MAX_TYPE]; /* kind, type -> view class (borrowed from `views`) */
static PyObject *views;                           /* keeps the classes alive */
static PyTypeObject *file_view;
static PyObject *d_pid, *d_file, *d_b, *d_o, *d_path, *d_inode; /* slot descriptors */
static PyObject *fallback;                                      /* records.decode */
static PyObject *decode_error;                                  /* records.DecodeError */

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

static PyObject *slot_descriptor(PyObject *cls, const char *name)
{
    PyObject *d = PyObject_GetAttrString(cls, name); /* on a class, a slot's attribute is its descriptor */
    if (d != NULL && Py_TYPE(d)->tp_descr_set == NULL) {
        PyErr_Format(PyExc_TypeError, "%R.%s is not a slot", cls, name);
        Py_CLEAR(d);
    }
    return d;
}

static PyObject *configure(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"offsets", "limits", "views", "file_view", "event_class", "file_event_class",
                             "decode", "decode_error", NULL};
    PyObject *new_views, *fv, *event_cls, *file_event_cls, *dec, *err;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "(nnnnnnnnnnnn)(IIII)O!O!OOOO", kwlist,
                                     &L.kt, &L.size, &L.pid, &L.extra, &L.ino, &L.flags, &L.l0, &L.l1,
                                     &L.file_end, &L.at_file, &L.at_path, &L.pad,
                                     &L.path_max, &L.extra_max, &L.present, &L.has_inode,
                                     &PyDict_Type, &new_views, &PyType_Type, &fv, &event_cls, &file_event_cls,
                                     &dec, &err))
        return NULL;
    memset(view_of, 0, sizeof view_of);
    PyObject *key, *value;
    Py_ssize_t i = 0;
    while (PyDict_Next(new_views, &i, &key, &value)) {
        unsigned long kt = PyLong_AsUnsignedLong(key);
        if (PyErr_Occurred())
            return NULL;
        if ((kt & 0xffff) >= MAX_KIND || (kt >> 16) >= MAX_TYPE || !PyType_Check(value)) {
            PyErr_Format(PyExc_ValueError, "bad view entry %R: %R", key, value);
            return NULL;
        }
        view_of[kt & 0xffff][kt >> 16] = (PyTypeObject *)value;
    }
    Py_INCREF(new_views);
    Py_XSETREF(views, new_views);
    Py_INCREF(fv);
    Py_XSETREF(file_view, (PyTypeObject *)fv);
    Py_INCREF(dec);
    Py_XSETREF(fallback, dec);
    Py_INCREF(err);
    Py_XSETREF(decode_error, err);
    Py_XSETREF(d_pid, slot_descriptor(event_cls, "pid"));
    Py_XSETREF(d_file, slot_descriptor(file_event_cls, "file"));
    Py_XSETREF(d_b, slot_descriptor(fv, "_b"));
    Py_XSETREF(d_o, slot_descriptor(fv, "_o"));
    Py_XSETREF(d_path, slot_descriptor(fv, "path"));
    Py_XSETREF(d_inode, slot_descriptor(fv, "inode"));
    if (!d_pid || !d_file || !d_b || !d_o || !d_path || !d_inode)
        return NULL;
    Py_RETURN_NONE;
}

/* The event view of a checked file record at `rec` (its ring header). */
static PyObject *make_view(PyTypeObject *cls, PyObject *owner, const unsigned char *b, Py_ssize_t rec,
                           uint32_t l0, uint32_t fl0)
{
    PyObject *o = cls->tp_alloc(cls, 0);
    if (o == NULL)
        return NULL;
    PyObject *f = file_view->tp_alloc(file_view, 0);
    if (f == NULL)
        goto fail;
    Py_INCREF(f);
    if (put(d_file, o, f) < 0) {
        Py_DECREF(f);
        goto fail;
    }
    Py_INCREF(owner);
    PyObject *inode = Py_None;
    if (fl0 & L.has_inode)
        inode = PyLong_FromUnsignedLongLong(u64(b + rec + L.ino));
    else
        Py_INCREF(inode);
    int bad = put(d_pid, o, PyLong_FromUnsignedLong(u32(b + rec + L.pid))) < 0
        || put(d_b, f, owner) < 0
        || put(d_o, f, PyLong_FromSsize_t(rec + L.at_file)) < 0
        || put(d_path, f, PyUnicode_DecodeUTF8((const char *)b + rec + L.at_path, l0, "surrogateescape")) < 0
        || put(d_inode, f, inode) < 0;
    Py_DECREF(f);
    if (!bad) {
        /* Untracked by the cycle collector (as CPython does with tuples of atoms): as built, a view refers to
         * nothing but bytes, ints, str, None and its file view (its other fields are read-only properties), so it
         * cannot be part of a cycle, and the collector no
         * longer walks every event held in a batch or a queue (30% of the reader's time here otherwise). */
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
    PyObject *event = PyObject_CallFunctionObjArgs(fallback, data, lazy ? Py_True : Py_False, NULL);
    Py_DECREF(data);
    if (event != NULL) {
        int r = PyList_Append(out, event);
        Py_DECREF(event);
        return r;
    }
    if (!PyErr_ExceptionMatches(decode_error))
        return -1;
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    PyObject *reason = PyObject_Str(exc);
    Py_XDECREF(type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
    if (reason == NULL)
        return -1;
    int r = PyList_Append(errors, reason);
    Py_DECREF(reason);
    return r;
}

PyDoc_STRVAR(decode_ring_doc,
"decode_ring(buf, end, lazy=True, stop=None) -> (events, consumed, errors)\n\n"
"records.decode_ring in C (see its docstring); configure() must have been called.");

static PyObject *decode_ring(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"buf", "end", "lazy", "stop", NULL};
    Py_buffer buf;
    Py_ssize_t end, stop;
    int lazy = 1;
    PyObject *stop_obj = Py_None;
    if (fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "decode_ring called before configure()");
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*n|pO", kwlist, &buf, &end, &lazy, &stop_obj))
        return NULL;
    PyObject *out = NULL, *errors = NULL, *result = NULL;
    if (stop_obj == Py_None) {
        stop = end;
    } else {
        stop = PyLong_AsSsize_t(stop_obj);
        if (stop == -1 && PyErr_Occurred())
            goto done;
    }
    if (end < 0 || end > buf.len - L.pad) {
        PyErr_Format(PyExc_ValueError, "end %zd: the buffer (%zd bytes) must extend %zd bytes past it",
                     end, buf.len, L.pad);
        goto done;
    }
    if (stop > end)
        stop = end;
    out = PyList_New(0);
    errors = PyList_New(0);
    if (out == NULL || errors == NULL)
        goto done;
    const unsigned char *b = buf.buf;
    Py_ssize_t pos = 0;
    while (pos < stop) { /* pos < end: the fixed fields at pos .. pos + L.pad are inside the buffer */
        uint32_t ln = u32(b + pos);
        if (ln >= DISCARD) { /* BUSY (not committed yet: stop here) or DISCARD */
            if (ln & BUSY)
                break;
            pos += ((ln & (DISCARD - 1)) + 15) & ~(Py_ssize_t)7;
            continue;
        }
        uint32_t kt = u32(b + pos + L.kt);
        PyTypeObject *cls = NULL;
        if (lazy && (kt & 0xffff) < MAX_KIND && (kt >> 16) < MAX_TYPE)
            cls = view_of[kt & 0xffff][kt >> 16];
        int whole = pos + 8 + (Py_ssize_t)ln <= end;
        if (cls != NULL && whole) {
            uint32_t extra = u32(b + pos + L.extra), fl0 = u32(b + pos + L.flags);
            uint32_t l0 = u16(b + pos + L.l0), r0 = u16(b + pos + L.l0 + 2);
            uint32_t l1 = u16(b + pos + L.l1), r1 = u16(b + pos + L.l1 + 2);
            if (u32(b + pos + L.size) == ln && ln == L.file_end + l0 + l1 + extra && l0 <= L.path_max
                && l1 <= L.path_max && extra <= L.extra_max && r0 <= l0 && r1 <= l1 && (fl0 & L.present)) {
                PyObject *o = make_view(cls, buf.obj, b, pos, l0, fl0);
                if (o == NULL || PyList_Append(out, o) < 0) {
                    Py_XDECREF(o);
                    goto done;
                }
                Py_DECREF(o);
                pos += ((Py_ssize_t)ln + 15) & ~(Py_ssize_t)7;
                continue;
            }
        }
        if (!whole)
            break; /* not wholly copied: the next read has it */
        if (decode_one(out, errors, b + pos + 8, ln, lazy) < 0)
            goto done;
        pos += ((Py_ssize_t)ln + 15) & ~(Py_ssize_t)7;
    }
    result = Py_BuildValue("(OnO)", out, pos, errors);
done:
    Py_XDECREF(out);
    Py_XDECREF(errors);
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(offsets, limits, views, file_view, event_class, file_event_class, decode, decode_error)\n\n"
     "The record layout and the classes to build, from opencws.probe.records."},
    {"decode_ring", (PyCFunction)(void (*)(void))decode_ring, METH_VARARGS | METH_KEYWORDS, decode_ring_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ringdecoder",
    "The ring reader's hot loop in C (opencws.probe.records configures and uses it).", -1, methods,
};

PyMODINIT_FUNC PyInit__ringdecoder(void) { return PyModule_Create(&module); }

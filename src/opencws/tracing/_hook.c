/* The context hook's hot path in C: `attach` and `detach` of OpenTelemetry's runtime context, each followed by the
 * publication of the current span's ids in the calling thread's record (opencws/tracing/context.py holds the
 * Python twin, `_publisher`, and the rules; tests/tracing holds the two to the same records).
 *
 * Written in C because a span is entered and left through it: the Python closures cost about 160 ns a
 * publication (the context lookup, the thread-local, the span's context, the mask, two stores), twice a span,
 * which is the whole of what the hook adds to an application's span. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    PyObject *set;     /* the context variable's set (returns a token) */
    PyObject *reset;   /* its reset(token) */
    PyObject *get;     /* its get() (the current context) */
    PyObject *key;     /* the context key of the current span */
    PyObject *local;   /* the registry's threading.local: `ids`, a memoryview of two u64 */
    PyObject *current; /* the registry's current(): registers the calling thread, returns its record */
} Hook;

static PyObject *str_ids, *str_get_span_context, *str_trace_id, *str_span_id;

/* The calling thread's record (registered now if it was not), or NULL with an exception set. The memoryview stays
 * referenced by the thread-local and the registry while this runs (no Python code runs before the stores). */
static uint64_t *record_of(Hook *h)
{
    PyObject *ids = PyObject_GetAttr(h->local, str_ids);
    if (ids == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        PyObject *record = PyObject_CallNoArgs(h->current);
        if (record == NULL)
            return NULL;
        ids = PyObject_GetAttr(record, str_ids);
        Py_DECREF(record);
        if (ids == NULL)
            return NULL;
    }
    if (!PyMemoryView_Check(ids) || PyMemoryView_GET_BUFFER(ids)->len < 16 || PyMemoryView_GET_BUFFER(ids)->readonly) {
        Py_DECREF(ids);
        PyErr_SetString(PyExc_TypeError, "a thread's record ids must be a writable memoryview of 16 bytes");
        return NULL;
    }
    uint64_t *p = (uint64_t *)PyMemoryView_GET_BUFFER(ids)->buf;
    Py_DECREF(ids);
    return p;
}

/* An id as the low 64 bits of the integer (the trace id's low half; the span id is 64 bits), or -1 with an error */
static int id_of(PyObject *v, uint64_t *out)
{
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "a span or trace id must be an int, not %.100s", Py_TYPE(v)->tp_name);
        return -1;
    }
    *out = PyLong_AsUnsignedLongLongMask(v);
    return (*out == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

/* Write `span`'s ids (NULL or None: no span, span id 0) into the calling thread's record. */
static int publish(Hook *h, PyObject *span)
{
    uint64_t *ids = record_of(h);
    if (ids == NULL)
        return -1;
    if (span == NULL || span == Py_None) {
        ids[0] = 0;
        return 0;
    }
    PyObject *sc = PyObject_CallMethodNoArgs(span, str_get_span_context);
    if (sc == NULL)
        return -1;
    PyObject *trace, *sid;
    if (PyTuple_Check(sc) && PyTuple_GET_SIZE(sc) >= 2) { /* a SpanContext is a tuple (trace_id, span_id, ...) */
        trace = PyTuple_GET_ITEM(sc, 0);
        sid = PyTuple_GET_ITEM(sc, 1);
        Py_INCREF(trace);
        Py_INCREF(sid);
    } else {
        trace = PyObject_GetAttr(sc, str_trace_id);
        sid = trace ? PyObject_GetAttr(sc, str_span_id) : NULL;
    }
    Py_DECREF(sc);
    uint64_t t = 0, s = 0;
    int err = trace == NULL || sid == NULL || id_of(trace, &t) < 0 || id_of(sid, &s) < 0;
    Py_XDECREF(trace);
    Py_XDECREF(sid);
    if (err)
        return -1;
    ids[1] = t;
    ids[0] = s; /* (0 for an invalid span: no dd) */
    return 0;
}

/* The current span of a context (a dict: OpenTelemetry's Context), borrowed, or NULL when absent (no error) */
static PyObject *span_in(Hook *h, PyObject *context, int *failed)
{
    *failed = 0;
    if (PyDict_Check(context)) {
        PyObject *span = PyDict_GetItemWithError(context, h->key);
        *failed = span == NULL && PyErr_Occurred();
        return span;
    }
    PyErr_Format(PyExc_TypeError, "a context must be a Context (a dict), not %.100s", Py_TYPE(context)->tp_name);
    *failed = 1;
    return NULL;
}

static PyObject *Hook_attach(Hook *h, PyObject *context)
{
    PyObject *token = PyObject_CallOneArg(h->set, context);
    if (token == NULL)
        return NULL;
    int failed;
    PyObject *span = span_in(h, context, &failed);
    if (failed || publish(h, span) < 0) {
        Py_DECREF(token);
        return NULL;
    }
    return token;
}

static PyObject *Hook_detach(Hook *h, PyObject *token)
{
    PyObject *r = PyObject_CallOneArg(h->reset, token);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    PyObject *context = PyObject_CallNoArgs(h->get);
    if (context == NULL)
        return NULL;
    int failed;
    PyObject *span = span_in(h, context, &failed);
    Py_XINCREF(span);
    Py_DECREF(context);
    int err = failed || publish(h, span) < 0;
    Py_XDECREF(span);
    if (err)
        return NULL;
    Py_RETURN_NONE;
}

static int Hook_init(Hook *h, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"set", "reset", "get", "key", "local", "current", NULL};
    PyObject *set, *reset, *get, *key, *local, *current;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOO", kwlist, &set, &reset, &get, &key, &local, &current))
        return -1;
    Py_INCREF(set); Py_XSETREF(h->set, set);
    Py_INCREF(reset); Py_XSETREF(h->reset, reset);
    Py_INCREF(get); Py_XSETREF(h->get, get);
    Py_INCREF(key); Py_XSETREF(h->key, key);
    Py_INCREF(local); Py_XSETREF(h->local, local);
    Py_INCREF(current); Py_XSETREF(h->current, current);
    return 0;
}

static int Hook_traverse(Hook *h, visitproc visit, void *arg)
{
    Py_VISIT(h->set);
    Py_VISIT(h->reset);
    Py_VISIT(h->get);
    Py_VISIT(h->key);
    Py_VISIT(h->local);
    Py_VISIT(h->current);
    return 0;
}

static int Hook_clear(Hook *h)
{
    Py_CLEAR(h->set);
    Py_CLEAR(h->reset);
    Py_CLEAR(h->get);
    Py_CLEAR(h->key);
    Py_CLEAR(h->local);
    Py_CLEAR(h->current);
    return 0;
}

static void Hook_dealloc(Hook *h)
{
    PyObject_GC_UnTrack(h);
    Hook_clear(h);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyMethodDef Hook_methods[] = {
    {"attach", (PyCFunction)Hook_attach, METH_O, "set the context, publish its span; returns the token"},
    {"detach", (PyCFunction)Hook_detach, METH_O, "reset to before the token, publish the current span"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "opencws.tracing._hook.Hook",
    .tp_basicsize = sizeof(Hook),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Hook(set, reset, get, key, local, current): attach/detach that publish the current span's ids",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Hook_init,
    .tp_traverse = (traverseproc)Hook_traverse,
    .tp_clear = (inquiry)Hook_clear,
    .tp_dealloc = (destructor)Hook_dealloc,
    .tp_methods = Hook_methods,
};

static struct PyModuleDef hook_module = {PyModuleDef_HEAD_INIT, "_hook", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__hook(void)
{
    str_ids = PyUnicode_InternFromString("ids");
    str_get_span_context = PyUnicode_InternFromString("get_span_context");
    str_trace_id = PyUnicode_InternFromString("trace_id");
    str_span_id = PyUnicode_InternFromString("span_id");
    if (!str_ids || !str_get_span_context || !str_trace_id || !str_span_id || PyType_Ready(&HookType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&hook_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&HookType);
    if (PyModule_AddObject(m, "Hook", (PyObject *)&HookType) < 0) {
        Py_DECREF(&HookType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

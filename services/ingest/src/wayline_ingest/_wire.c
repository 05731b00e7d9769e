/* The hot loop of ingest, in C: read event batches as they came off the wire, check each event and stamp it
 * without building a Python message (ADR 13).
 *
 * Python reads one element of a repeated protobuf field for about a microsecond, and the checks and stamps
 * of one event cost 15 µs there; this file does the same work in well under one. It answers only what it
 * can answer for certain: an event it cannot vouch for (anything unusual, anything invalid, anything
 * without an id) comes back as None, and the Python pipeline parses it and gives the detailed answer.
 * So this file never has to explain a refusal, and a rule missing here costs speed, never correctness.
 *
 * What "vouch" means: the event's bytes are well-formed protobuf that the Python runtime would parse
 * (every field known to the schema, wire types as declared, strings valid UTF-8, nesting within a bound,
 * no singular field repeated), and the Python checks (validation.violations_of and stamp) would find
 * nothing. The schema and the field numbers come from the generated descriptors at import (wire.py), so
 * the contract stays the one source of every number used here.
 *
 * Stamping appends fields instead of rewriting the message: protobuf parsers let a later occurrence of a
 * singular field win, and merge a later occurrence of a message field into the earlier one. Every
 * Timestamp appended here carries both seconds and nanos explicitly, so the merge replaces the old value
 * exactly as the Python stamp's assignment does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* KIND_FINITE_DOUBLE: a double that must be finite (a JSON number: google.protobuf.Value's number_value). */
enum {
    KIND_VARINT = 1,
    KIND_FIXED64 = 2,
    KIND_FIXED32 = 3,
    KIND_STRING = 4,
    KIND_BYTES = 5,
    KIND_MESSAGE = 6,
    KIND_FINITE_DOUBLE = 7
};
enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };
#define MAX_DEPTH 32
#define MAX_FIELDS_TRACKED 64 /* the bitmask of singular fields seen holds 64: higher ones take the Python path */

typedef struct {
    uint32_t number;
    uint8_t kind;
    uint8_t repeated;
    int32_t message; /* index of the nested message's spec, for KIND_MESSAGE */
} FieldSpec;

typedef struct {
    Py_ssize_t count;
    FieldSpec *fields; /* sorted by number */
} MessageSpec;

/* The field numbers the checks read, named (set by configure()). */
typedef struct {
    uint32_t event_id, type, name, channel, timestamp, sent_at, received_at, identifiers, person_id, revenue,
        group_id, plan_violations, sentiment_score, original_timestamp, integrations;
    uint32_t identifier_type, identifier_value;
    uint32_t seconds, nanos;
    int64_t track, group;            /* EventType values */
    int64_t type_last, channel_last; /* the largest EventType and Channel values this build knows */
    int32_t identifier_message, timestamp_message;
} Numbers;

static MessageSpec *specs = NULL;
static Py_ssize_t spec_count = 0;
static Numbers numbers;
static int configured = 0;

/* ---------------------------------------------------------------------------------------------------- */
/* Wire reading. Each reader returns 0 on malformed input. */

static int read_varint(const uint8_t **at, const uint8_t *end, uint64_t *value) {
    const uint8_t *p = *at;
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end) return 0;
        uint8_t byte = *p++;
        if (shift == 63 && byte > 1) return 0; /* more than 64 bits */
        result |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *at = p;
            *value = result;
            return 1;
        }
    }
    return 0;
}

static int read_length(const uint8_t **at, const uint8_t *end, const uint8_t **body, Py_ssize_t *length) {
    uint64_t size;
    if (!read_varint(at, end, &size) || size > (uint64_t)(end - *at)) return 0;
    *body = *at;
    *length = (Py_ssize_t)size;
    *at += size;
    return 1;
}

/* Strict UTF-8 as the protobuf runtime and Python's codec define it: no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
static int valid_utf8(const uint8_t *p, Py_ssize_t length) {
    const uint8_t *end = p + length;
    while (p < end) {
        uint8_t c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            if (end - p < 2 || (p[1] & 0xc0) != 0x80) return 0;
            p += 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            if (end - p < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) return 0;
            if (c == 0xe0 && p[1] < 0xa0) return 0; /* overlong */
            if (c == 0xed && p[1] > 0x9f) return 0; /* surrogate */
            p += 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
            if (end - p < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
                return 0;
            if (c == 0xf0 && p[1] < 0x90) return 0; /* overlong */
            if (c == 0xf4 && p[1] > 0x8f) return 0; /* above U+10FFFF */
            p += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

static const FieldSpec *find_field(const MessageSpec *message, uint32_t number) {
    Py_ssize_t low = 0, high = message->count - 1;
    while (low <= high) {
        Py_ssize_t middle = (low + high) / 2;
        uint32_t found = message->fields[middle].number;
        if (found == number) return &message->fields[middle];
        if (found < number) low = middle + 1;
        else high = middle - 1;
    }
    return NULL;
}

static int walk(const uint8_t *p, const uint8_t *end, int32_t message, int depth);

/* The next field's tag: its spec in `message`, NULL when the bytes are malformed or the field unknown. */
static const FieldSpec *next_known(const uint8_t **at, const uint8_t *end, const MessageSpec *message,
                                   uint32_t *wire) {
    uint64_t tag;
    if (!read_varint(at, end, &tag) || tag >> 3 > UINT32_MAX) return NULL;
    *wire = (uint32_t)(tag & 7);
    return find_field(message, (uint32_t)(tag >> 3)); /* field 0 is never in a spec */
}

/* A singular field may appear once: 1 the first time, 0 after (and past the numbers `seen` can hold). */
static int first_sight(uint64_t *seen, const FieldSpec *field) {
    if (field->repeated) return 1;
    if (field->number >= MAX_FIELDS_TRACKED || (*seen & ((uint64_t)1 << field->number))) return 0;
    *seen |= (uint64_t)1 << field->number;
    return 1;
}

/* One field's value, already past its tag: 1 when it is what the schema declares. */
static int check_value(const uint8_t **at, const uint8_t *end, const FieldSpec *field, uint32_t wire, int depth) {
    const uint8_t *body;
    Py_ssize_t length;
    uint64_t ignored;
    switch (field->kind) {
    case KIND_VARINT:
        if (wire == WIRE_VARINT) return read_varint(at, end, &ignored);
        if (wire != WIRE_LEN || !field->repeated || !read_length(at, end, &body, &length)) return 0;
        for (const uint8_t *p = body; p < body + length;) /* packed */
            if (!read_varint(&p, body + length, &ignored)) return 0;
        return 1;
    case KIND_FIXED64:
    case KIND_FIXED32: {
        Py_ssize_t width = field->kind == KIND_FIXED64 ? 8 : 4;
        if (wire == (field->kind == KIND_FIXED64 ? WIRE_FIXED64 : WIRE_FIXED32)) {
            if (end - *at < width) return 0;
            *at += width;
            return 1;
        }
        if (wire != WIRE_LEN || !field->repeated || !read_length(at, end, &body, &length)) return 0;
        return length % width == 0;
    }
    case KIND_FINITE_DOUBLE: {
        uint64_t bits = 0;
        double number;
        if (wire != WIRE_FIXED64 || field->repeated || end - *at < 8) return 0;
        for (int i = 7; i >= 0; i--) bits = bits << 8 | (*at)[i]; /* the wire is little-endian */
        memcpy(&number, &bits, sizeof(number));
        *at += 8;
        return isfinite(number);
    }
    case KIND_STRING:
        return wire == WIRE_LEN && read_length(at, end, &body, &length) && valid_utf8(body, length);
    case KIND_BYTES:
        return wire == WIRE_LEN && read_length(at, end, &body, &length);
    case KIND_MESSAGE:
        return wire == WIRE_LEN && read_length(at, end, &body, &length) &&
               walk(body, body + length, field->message, depth + 1);
    default:
        return 0;
    }
}

/* A whole message against its spec: every field known, wire types as declared, no singular field twice. */
static int walk(const uint8_t *p, const uint8_t *end, int32_t message, int depth) {
    if (depth > MAX_DEPTH) return 0;
    const MessageSpec *spec = &specs[message];
    uint64_t seen = 0;
    while (p < end) {
        uint32_t wire;
        const FieldSpec *field = next_known(&p, end, spec, &wire);
        /* An unknown field is new to this version: the Python path keeps it. */
        if (field == NULL || !first_sight(&seen, field) || !check_value(&p, end, field, wire, depth)) return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------------- */
/* The facts the checks need, gathered while walking an event's top level. */

typedef struct {
    int present;
    int64_t seconds;
    int64_t nanos;
} Stamp;

typedef struct {
    const uint8_t *event_id;
    Py_ssize_t event_id_length;
    int64_t type, channel;
    Py_ssize_t name_length, person_id_length, group_id_length;
    int identifiers;
    int revenue, plan_violations, sentiment_score, original_timestamp;
    int selects; /* `integrations` holds at least one entry: the forwarder reads which sinks it selects */
    Stamp timestamp, sent_at;
} Facts;

static int read_timestamp(const uint8_t *p, const uint8_t *end, Stamp *stamp) {
    int seen_seconds = 0, seen_nanos = 0;
    stamp->present = 1;
    stamp->seconds = 0;
    stamp->nanos = 0;
    while (p < end) {
        uint64_t tag, value;
        if (!read_varint(&p, end, &tag) || (tag & 7) != WIRE_VARINT || !read_varint(&p, end, &value)) return 0;
        if (tag >> 3 == numbers.seconds && !seen_seconds) {
            stamp->seconds = (int64_t)value;
            seen_seconds = 1;
        } else if (tag >> 3 == numbers.nanos && !seen_nanos) {
            stamp->nanos = (int32_t)(uint32_t)value;
            seen_nanos = 1;
        } else {
            return 0;
        }
    }
    return 1;
}

static int identifier_type_ok(const uint8_t *p, Py_ssize_t length) {
    if (length < 1 || length > 64 || p[0] < 'a' || p[0] > 'z') return 0;
    for (Py_ssize_t i = 1; i < length; i++) {
        uint8_t c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return 1;
}

/* True when some character is certainly not whitespace: an ASCII byte that Python's str.isspace()
 * refuses. Values of only non-ASCII characters go to the Python path, which knows Unicode's spaces. */
static int has_visible_ascii(const uint8_t *p, Py_ssize_t length) {
    for (Py_ssize_t i = 0; i < length; i++) {
        uint8_t c = p[i];
        if (c < 0x80 && !(c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f))) return 1;
    }
    return 0;
}

static int identifier_ok(const uint8_t *p, const uint8_t *end) {
    const uint8_t *type = NULL, *value = NULL;
    Py_ssize_t type_length = 0, value_length = 0;
    while (p < end) {
        uint64_t tag;
        const uint8_t *body;
        Py_ssize_t length;
        if (!read_varint(&p, end, &tag) || (tag & 7) != WIRE_LEN || !read_length(&p, end, &body, &length))
            return 0;
        if (!valid_utf8(body, length)) return 0;
        if (tag >> 3 == numbers.identifier_type && type == NULL) {
            type = body;
            type_length = length;
        } else if (tag >> 3 == numbers.identifier_value && value == NULL) {
            value = body;
            value_length = length;
        } else {
            return 0;
        }
    }
    /* At most 512 characters: 512 bytes of UTF-8 never hold more. */
    return type != NULL && identifier_type_ok(type, type_length) && value != NULL && value_length <= 512 &&
           has_visible_ascii(value, value_length) && memchr(value, 0, (size_t)value_length) == NULL;
}

static int is_hex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* The canonical 8-4-4-4-12 form; the Python path judges the other forms uuid.UUID accepts. */
static int canonical_uuid(const uint8_t *p, Py_ssize_t length) {
    if (length != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (p[i] != '-') return 0;
        } else if (!is_hex(p[i])) {
            return 0;
        }
    }
    return 1;
}

/* Walk the event's top level, checking each field against the schema and noting the facts. */
static int gather(const uint8_t *p, const uint8_t *end, Facts *facts) {
    const MessageSpec *spec = &specs[0];
    uint64_t seen = 0;
    memset(facts, 0, sizeof(*facts));
    while (p < end) {
        uint32_t wire;
        const FieldSpec *field = next_known(&p, end, spec, &wire);
        if (field == NULL || !first_sight(&seen, field)) return 0;
        uint32_t number = field->number;
        const uint8_t *body = NULL, *value_start = p;
        Py_ssize_t length = 0;
        if (number == numbers.timestamp || number == numbers.sent_at || number == numbers.identifiers) {
            /* Their readers below check every byte, more strictly than the schema walk would. */
            if (wire != WIRE_LEN || !read_length(&p, end, &body, &length)) return 0;
        } else {
            if (!check_value(&p, end, field, wire, 0)) return 0;
            const uint8_t *q = value_start;
            if (wire == WIRE_LEN) read_length(&q, end, &body, &length); /* checked above */
        }
        if (number == numbers.event_id) {
            facts->event_id = body;
            facts->event_id_length = length;
        } else if (number == numbers.type || number == numbers.channel) {
            uint64_t value;
            const uint8_t *q = value_start;
            if (wire != WIRE_VARINT || !read_varint(&q, end, &value)) return 0;
            *(number == numbers.type ? &facts->type : &facts->channel) = (int32_t)(uint32_t)value;
        } else if (number == numbers.name) {
            facts->name_length = length;
        } else if (number == numbers.timestamp || number == numbers.sent_at) {
            if (!read_timestamp(body, body + length, number == numbers.timestamp ? &facts->timestamp : &facts->sent_at))
                return 0;
        } else if (number == numbers.identifiers) {
            if (++facts->identifiers > 32 || !identifier_ok(body, body + length)) return 0;
        } else if (number == numbers.person_id) {
            facts->person_id_length = length;
        } else if (number == numbers.group_id) {
            facts->group_id_length = length;
        } else if (number == numbers.revenue) {
            facts->revenue = 1;
        } else if (number == numbers.plan_violations) {
            facts->plan_violations = 1;
        } else if (number == numbers.sentiment_score) {
            facts->sentiment_score = 1;
        } else if (number == numbers.original_timestamp) {
            facts->original_timestamp = 1;
        } else if (number == numbers.integrations) {
            facts->selects = length > 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Stamping. */

#define BILLION 1000000000LL
/* Timestamps the fast path handles: seconds within [-(2^33), 2^33], far inside int64 nanoseconds. */
#define SECONDS_BOUND 8589934592LL

static int timestamp_in_bounds(const Stamp *stamp, int64_t floor_seconds) {
    return stamp->seconds >= floor_seconds && stamp->seconds <= SECONDS_BOUND && stamp->nanos >= 0 &&
           stamp->nanos < BILLION;
}

static uint8_t *write_varint(uint8_t *out, uint64_t value) {
    while (value >= 0x80) {
        *out++ = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    *out++ = (uint8_t)value;
    return out;
}

static Py_ssize_t varint_size(uint64_t value) {
    Py_ssize_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        size++;
    }
    return size;
}

/* A Timestamp field with seconds and nanos both written (even when zero), so a merge replaces the old one. */
static uint8_t *write_timestamp(uint8_t *out, uint32_t number, int64_t total_nanos) {
    int64_t seconds = total_nanos / BILLION, nanos = total_nanos % BILLION;
    if (nanos < 0) {
        nanos += BILLION;
        seconds -= 1;
    }
    Py_ssize_t body = 1 + varint_size((uint64_t)seconds) + 1 + varint_size((uint64_t)nanos);
    out = write_varint(out, ((uint64_t)number << 3) | WIRE_LEN);
    out = write_varint(out, (uint64_t)body);
    out = write_varint(out, ((uint64_t)numbers.seconds << 3) | WIRE_VARINT);
    out = write_varint(out, (uint64_t)seconds);
    out = write_varint(out, ((uint64_t)numbers.nanos << 3) | WIRE_VARINT);
    return write_varint(out, (uint64_t)nanos);
}

typedef struct {
    int64_t received_nanos;
    int64_t floor_seconds;
    int64_t future_skew_nanos;
    Py_ssize_t max_event_bytes;
} Limits;

/* (event_id, stamped bytes, selects) for an event this file vouches for (selects: True when its `integrations`
 * is not empty), None for the Python path; NULL on error. */
static PyObject *check_and_stamp(const uint8_t *data, Py_ssize_t size, const Limits *limits) {
    Facts facts;
    if (size > limits->max_event_bytes || !gather(data, data + size, &facts)) Py_RETURN_NONE;
    if (!canonical_uuid(facts.event_id, facts.event_id_length) || facts.type < 1 || facts.type > numbers.type_last ||
        facts.channel < 1 || facts.channel > numbers.channel_last ||
        facts.name_length > 200 || (facts.type == numbers.track && !facts.name_length) ||
        (facts.type == numbers.group && !facts.group_id_length) || facts.person_id_length ||
        facts.plan_violations || facts.sentiment_score || facts.revenue || !facts.identifiers)
        Py_RETURN_NONE;
    if (facts.sent_at.present && !timestamp_in_bounds(&facts.sent_at, limits->floor_seconds)) Py_RETURN_NONE;
    int64_t received = limits->received_nanos, happened = received;
    if (facts.timestamp.present) {
        if (!timestamp_in_bounds(&facts.timestamp, limits->floor_seconds)) Py_RETURN_NONE;
        happened = facts.timestamp.seconds * BILLION + facts.timestamp.nanos;
        if (facts.sent_at.present)
            happened += received - (facts.sent_at.seconds * BILLION + facts.sent_at.nanos);
    } else if (facts.original_timestamp) {
        Py_RETURN_NONE; /* the Python stamp clears it; appending cannot */
    }
    /* A sent_at far ahead of the timestamp moves the touchpoint back as far: the Python stamp refuses it. */
    if (happened > received + limits->future_skew_nanos || happened < limits->floor_seconds * BILLION)
        Py_RETURN_NONE;

    uint8_t extra[3 * 32];
    uint8_t *out = write_timestamp(extra, numbers.received_at, received);
    if (facts.timestamp.present) {
        int64_t original = facts.timestamp.seconds * BILLION + facts.timestamp.nanos;
        out = write_timestamp(out, numbers.original_timestamp, original);
        if (facts.sent_at.present) out = write_timestamp(out, numbers.timestamp, happened);
    } else {
        out = write_timestamp(out, numbers.timestamp, received);
    }
    Py_ssize_t added = out - extra;
    PyObject *stamped = PyBytes_FromStringAndSize(NULL, size + added);
    if (stamped == NULL) return NULL;
    memcpy(PyBytes_AS_STRING(stamped), data, (size_t)size);
    memcpy(PyBytes_AS_STRING(stamped) + size, extra, (size_t)added);
    PyObject *event_id = PyUnicode_FromStringAndSize((const char *)facts.event_id, facts.event_id_length);
    if (event_id == NULL) {
        Py_DECREF(stamped);
        return NULL;
    }
    PyObject *vouched = PyTuple_Pack(3, event_id, stamped, facts.selects ? Py_True : Py_False);
    Py_DECREF(event_id);
    Py_DECREF(stamped);
    return vouched;
}

static int read_u32(PyObject *item, uint32_t *out) {
    unsigned long value = PyLong_AsUnsignedLong(item);
    if (PyErr_Occurred()) return 0;
    *out = (uint32_t)value;
    return 1;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Field surgery for the forwarder: copy, renumber, drop and append fields of well-formed messages without
 * parsing them into Python (the identity sink's requests and resolutions). The bytes come from the spool,
 * where only checked events go, and from identity's replies; malformed input raises ValueError. */

typedef struct {
    uint32_t number;
    uint32_t wire;
    const uint8_t *start; /* the whole field, tag included */
    const uint8_t *value; /* the value: for LEN fields, after the length */
    Py_ssize_t value_length;
    const uint8_t *end;
} Field;

static int next_field(const uint8_t **at, const uint8_t *end, Field *field) {
    uint64_t tag, ignored;
    field->start = *at;
    if (!read_varint(at, end, &tag) || tag >> 3 > UINT32_MAX || tag >> 3 == 0) return 0;
    field->number = (uint32_t)(tag >> 3);
    field->wire = (uint32_t)(tag & 7);
    field->value = *at;
    switch (field->wire) {
    case WIRE_VARINT:
        if (!read_varint(at, end, &ignored)) return 0;
        break;
    case WIRE_FIXED64:
        if (end - *at < 8) return 0;
        *at += 8;
        break;
    case WIRE_FIXED32:
        if (end - *at < 4) return 0;
        *at += 4;
        break;
    case WIRE_LEN:
        if (!read_length(at, end, &field->value, &field->value_length)) return 0;
        break;
    default:
        return 0;
    }
    if (field->wire != WIRE_LEN) field->value_length = *at - field->value;
    field->end = *at;
    return 1;
}

/* A growable byte buffer on the Python heap. */
typedef struct {
    uint8_t *data;
    Py_ssize_t length, capacity;
} Buffer;

static int reserve(Buffer *buffer, Py_ssize_t more) {
    if (buffer->length + more <= buffer->capacity) return 1;
    Py_ssize_t capacity = buffer->capacity ? buffer->capacity : 256;
    while (capacity < buffer->length + more) capacity *= 2;
    uint8_t *grown = PyMem_Realloc(buffer->data, (size_t)capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    buffer->data = grown;
    buffer->capacity = capacity;
    return 1;
}

static int put(Buffer *buffer, const uint8_t *bytes, Py_ssize_t length) {
    if (!reserve(buffer, length)) return 0;
    memcpy(buffer->data + buffer->length, bytes, (size_t)length);
    buffer->length += length;
    return 1;
}

static int put_varint(Buffer *buffer, uint64_t value) {
    if (!reserve(buffer, 10)) return 0;
    buffer->length = write_varint(buffer->data + buffer->length, value) - buffer->data;
    return 1;
}

/* A field of `number` holding `field`'s value: the same wire type and value bytes, a new tag. */
static int put_renumbered(Buffer *buffer, uint32_t number, const Field *field) {
    if (!put_varint(buffer, ((uint64_t)number << 3) | field->wire)) return 0;
    if (field->wire == WIRE_LEN && !put_varint(buffer, (uint64_t)field->value_length)) return 0;
    return put(buffer, field->value, field->value_length);
}

static PyObject *take(Buffer *buffer) {
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)buffer->data, buffer->length);
    PyMem_Free(buffer->data);
    buffer->data = NULL;
    return bytes;
}

static PyObject *malformed(Buffer *buffer, const char *what) {
    PyMem_Free(buffer->data);
    PyErr_Format(PyExc_ValueError, "%s is not well-formed protobuf", what);
    return NULL;
}

/* project(message, mapping): the fields of `message` whose numbers `mapping` names, renumbered, in order. */
static PyObject *project(PyObject *module, PyObject *args) {
    Py_buffer view;
    PyObject *mapping;
    if (!PyArg_ParseTuple(args, "y*O!", &view, &PyDict_Type, &mapping)) return NULL;
    uint32_t from[32], to[32];
    Py_ssize_t pairs = 0, position = 0;
    PyObject *key, *value;
    while (PyDict_Next(mapping, &position, &key, &value)) {
        if (pairs == 32) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "at most 32 fields can be projected");
            return NULL;
        }
        if (!read_u32(key, &from[pairs]) || !read_u32(value, &to[pairs])) {
            PyBuffer_Release(&view);
            return NULL;
        }
        pairs++;
    }
    Buffer out = {0};
    const uint8_t *p = view.buf, *end = p + view.len;
    Field field;
    while (p < end) {
        if (!next_field(&p, end, &field)) {
            PyBuffer_Release(&view);
            return malformed(&out, "the message");
        }
        for (Py_ssize_t i = 0; i < pairs; i++) {
            if (from[i] == field.number) {
                if (!put_renumbered(&out, to[i], &field)) {
                    PyBuffer_Release(&view);
                    PyMem_Free(out.data);
                    return NULL;
                }
                break;
            }
        }
    }
    PyBuffer_Release(&view);
    return take(&out);
}

/* join(items, number): `items` as the occurrences of repeated field `number` (a repeated message). */
static PyObject *join(PyObject *module, PyObject *args) {
    PyObject *items;
    unsigned int number;
    if (!PyArg_ParseTuple(args, "O!I", &PyList_Type, &items, &number)) return NULL;
    Buffer out = {0};
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (!PyBytes_Check(item)) {
            PyMem_Free(out.data);
            PyErr_SetString(PyExc_TypeError, "items must be bytes");
            return NULL;
        }
        Py_ssize_t length = PyBytes_GET_SIZE(item);
        if (!put_varint(&out, ((uint64_t)number << 3) | WIRE_LEN) || !put_varint(&out, (uint64_t)length) ||
            !put(&out, (const uint8_t *)PyBytes_AS_STRING(item), length)) {
            PyMem_Free(out.data);
            return NULL;
        }
    }
    return take(&out);
}

/* The identity resolution's numbers (set by configure_resolution()). */
static struct {
    uint32_t person_id, identifiers, ignored_identifiers, ignored_identifier; /* in IdentityResolution */
    uint32_t event_person_id, event_identifiers;                            /* in Event */
    int configured;
} resolution_numbers;

/* apply_resolution(event, resolution): the event with identity's answer in place of its person id and
 * identifiers: the person id, then the normalised identifiers, then the ignored ones as sent. */
static PyObject *apply_resolution(PyObject *module, PyObject *args) {
    Py_buffer event, resolution;
    if (!PyArg_ParseTuple(args, "y*y*", &event, &resolution)) return NULL;
    Buffer out = {0};
    Field field;
    const char *bad = NULL;
    if (!resolution_numbers.configured) {
        PyErr_SetString(PyExc_RuntimeError, "wayline_ingest._wire.configure_resolution() was not called");
        goto fail;
    }
    const uint8_t *p = event.buf, *end = p + event.len;
    while (p < end) {
        if (!next_field(&p, end, &field)) {
            bad = "the event";
            goto fail;
        }
        if (field.number == resolution_numbers.event_person_id || field.number == resolution_numbers.event_identifiers)
            continue;
        if (!put(&out, field.start, field.end - field.start)) goto fail;
    }
    const uint8_t *r_start = resolution.buf, *r_end = r_start + resolution.len;
    const uint8_t *person_value = NULL;
    Py_ssize_t person_length = 0;
    for (p = r_start; p < r_end;) { /* the person id: the last occurrence wins, as on parse */
        if (!next_field(&p, r_end, &field)) {
            bad = "the resolution";
            goto fail;
        }
        if (field.number == resolution_numbers.person_id && field.wire == WIRE_LEN) {
            person_value = field.value;
            person_length = field.value_length;
        }
    }
    if (person_length) {
        Field person = {resolution_numbers.event_person_id, WIRE_LEN, NULL, person_value, person_length, NULL};
        if (!put_renumbered(&out, resolution_numbers.event_person_id, &person)) goto fail;
    }
    for (p = r_start; p < r_end;) {
        next_field(&p, r_end, &field); /* checked above */
        if (field.number == resolution_numbers.identifiers && field.wire == WIRE_LEN &&
            !put_renumbered(&out, resolution_numbers.event_identifiers, &field))
            goto fail;
    }
    for (p = r_start; p < r_end;) {
        next_field(&p, r_end, &field);
        if (field.number != resolution_numbers.ignored_identifiers || field.wire != WIRE_LEN) continue;
        /* The ignored entry's identifier (merged over its occurrences, as on parse: each is a whole
         * Identifier copied in order, which the parser merges field by field). */
        const uint8_t *q = field.value, *q_end = field.value + field.value_length;
        Field inner;
        Buffer identifier = {0};
        while (q < q_end) {
            if (!next_field(&q, q_end, &inner)) {
                PyMem_Free(identifier.data);
                bad = "an ignored identifier";
                goto fail;
            }
            if (inner.number == resolution_numbers.ignored_identifier && inner.wire == WIRE_LEN &&
                !put(&identifier, inner.value, inner.value_length)) {
                PyMem_Free(identifier.data);
                goto fail;
            }
        }
        Field kept = {resolution_numbers.event_identifiers, WIRE_LEN, NULL, identifier.data, identifier.length, NULL};
        int written = put_renumbered(&out, resolution_numbers.event_identifiers, &kept);
        PyMem_Free(identifier.data);
        if (!written) goto fail;
    }
    PyBuffer_Release(&event);
    PyBuffer_Release(&resolution);
    return take(&out);
fail:
    PyBuffer_Release(&event);
    PyBuffer_Release(&resolution);
    if (bad != NULL) return malformed(&out, bad);
    PyMem_Free(out.data);
    return NULL;
}

static PyObject *configure_resolution(PyObject *module, PyObject *args) {
    PyObject *named;
    if (!PyArg_ParseTuple(args, "O!", &PyDict_Type, &named)) return NULL;
    struct {
        const char *name;
        uint32_t *slot;
    } wanted[] = {
        {"resolution.person_id", &resolution_numbers.person_id},
        {"resolution.identifiers", &resolution_numbers.identifiers},
        {"resolution.ignored_identifiers", &resolution_numbers.ignored_identifiers},
        {"ignored.identifier", &resolution_numbers.ignored_identifier},
        {"event.person_id", &resolution_numbers.event_person_id},
        {"event.identifiers", &resolution_numbers.event_identifiers},
    };
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        PyObject *item = PyDict_GetItemString(named, wanted[i].name);
        if (item == NULL) return PyErr_Format(PyExc_KeyError, "field number of %s is missing", wanted[i].name);
        if (!read_u32(item, wanted[i].slot)) return NULL;
    }
    resolution_numbers.configured = 1;
    Py_RETURN_NONE;
}

/* nonempty(message, path): True when the string or message field at `path` (numbers from the root) is set
 * to something non-empty; the last occurrence of each step counts, as on parse (merges aside). */
static PyObject *nonempty(PyObject *module, PyObject *args) {
    Py_buffer view;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "y*O!", &view, &PyTuple_Type, &path)) return NULL;
    const uint8_t *p = view.buf, *end = p + view.len;
    int found = 0;
    Py_ssize_t steps = PyTuple_GET_SIZE(path);
    for (Py_ssize_t step = 0; step < steps; step++) {
        uint32_t number;
        if (!read_u32(PyTuple_GET_ITEM(path, step), &number)) {
            PyBuffer_Release(&view);
            return NULL;
        }
        const uint8_t *value = NULL;
        Py_ssize_t length = 0;
        Field field;
        found = 0;
        while (p < end) {
            if (!next_field(&p, end, &field)) {
                PyBuffer_Release(&view);
                PyErr_SetString(PyExc_ValueError, "the message is not well-formed protobuf");
                return NULL;
            }
            if (field.number == number && field.wire == WIRE_LEN) {
                value = field.value;
                length = field.value_length;
                found = 1;
            }
        }
        if (!found) break;
        p = value;
        end = value + length;
        found = length > 0;
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(found);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Python entry points. */

static void free_specs(void) {
    for (Py_ssize_t i = 0; i < spec_count; i++) PyMem_Free(specs[i].fields);
    PyMem_Free(specs);
    specs = NULL;
    spec_count = 0;
    configured = 0;
}

static PyObject *configure(PyObject *module, PyObject *args) {
    PyObject *messages, *named;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &messages, &PyDict_Type, &named)) return NULL;
    free_specs();
    Py_ssize_t count = PyList_GET_SIZE(messages);
    specs = PyMem_Calloc((size_t)count, sizeof(MessageSpec));
    if (specs == NULL) return PyErr_NoMemory();
    spec_count = count;
    for (Py_ssize_t m = 0; m < count; m++) {
        PyObject *fields = PyList_GET_ITEM(messages, m);
        if (!PyList_Check(fields)) {
            PyErr_SetString(PyExc_TypeError, "each message spec is a list of (number, kind, repeated, message)");
            goto fail;
        }
        Py_ssize_t n = PyList_GET_SIZE(fields);
        specs[m].count = n;
        specs[m].fields = PyMem_Calloc((size_t)(n ? n : 1), sizeof(FieldSpec));
        if (specs[m].fields == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t f = 0; f < n; f++) {
            unsigned int number, kind, repeated;
            int message;
            if (!PyArg_ParseTuple(PyList_GET_ITEM(fields, f), "IIpi", &number, &kind, &repeated, &message))
                goto fail;
            if (f && number <= specs[m].fields[f - 1].number) {
                PyErr_SetString(PyExc_ValueError, "fields must be sorted by number");
                goto fail;
            }
            if (kind == KIND_MESSAGE && (message < 0 || message >= count)) {
                PyErr_SetString(PyExc_ValueError, "a message field names an unknown message spec");
                goto fail;
            }
            specs[m].fields[f] = (FieldSpec){number, (uint8_t)kind, (uint8_t)repeated, message};
        }
    }
    struct {
        const char *name;
        uint32_t *slot;
    } wanted[] = {
        {"event_id", &numbers.event_id}, {"type", &numbers.type}, {"name", &numbers.name},
        {"channel", &numbers.channel}, {"timestamp", &numbers.timestamp}, {"sent_at", &numbers.sent_at},
        {"received_at", &numbers.received_at}, {"identifiers", &numbers.identifiers},
        {"person_id", &numbers.person_id}, {"revenue", &numbers.revenue}, {"group_id", &numbers.group_id},
        {"plan_violations", &numbers.plan_violations}, {"sentiment_score", &numbers.sentiment_score},
        {"original_timestamp", &numbers.original_timestamp}, {"integrations", &numbers.integrations},
        {"identifier.type", &numbers.identifier_type},
        {"identifier.value", &numbers.identifier_value}, {"timestamp.seconds", &numbers.seconds},
        {"timestamp.nanos", &numbers.nanos},
    };
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        PyObject *item = PyDict_GetItemString(named, wanted[i].name);
        if (item == NULL) {
            PyErr_Format(PyExc_KeyError, "field number of %s is missing", wanted[i].name);
            goto fail;
        }
        if (!read_u32(item, wanted[i].slot)) goto fail;
    }
    PyObject *track = PyDict_GetItemString(named, "EVENT_TYPE_TRACK");
    PyObject *group = PyDict_GetItemString(named, "EVENT_TYPE_GROUP");
    if (track == NULL || group == NULL) {
        PyErr_SetString(PyExc_KeyError, "the track and group event types are missing");
        goto fail;
    }
    PyObject *type_last = PyDict_GetItemString(named, "EVENT_TYPE_LAST");
    PyObject *channel_last = PyDict_GetItemString(named, "CHANNEL_LAST");
    if (type_last == NULL || channel_last == NULL) {
        PyErr_SetString(PyExc_KeyError, "the largest event type and channel values are missing");
        goto fail;
    }
    numbers.track = PyLong_AsLongLong(track);
    numbers.group = PyLong_AsLongLong(group);
    numbers.type_last = PyLong_AsLongLong(type_last);
    numbers.channel_last = PyLong_AsLongLong(channel_last);
    if (PyErr_Occurred()) goto fail;
    configured = 1;
    Py_RETURN_NONE;
fail:
    free_specs();
    return NULL;
}

static int need_configured(void) {
    if (!configured) PyErr_SetString(PyExc_RuntimeError, "wayline_ingest._wire.configure() was not called");
    return configured;
}

static PyObject *split(PyObject *module, PyObject *args) {
    Py_buffer view;
    unsigned int events_field;
    if (!PyArg_ParseTuple(args, "y*I", &view, &events_field)) return NULL;
    PyObject *scalars = PyDict_New(), *events = PyList_New(0), *result = NULL;
    if (scalars == NULL || events == NULL) goto done;
    const uint8_t *p = view.buf, *end = p + view.len;
    while (p < end) {
        uint64_t tag, value;
        const uint8_t *body;
        Py_ssize_t length;
        if (!read_varint(&p, end, &tag)) goto malformed;
        switch (tag & 7) {
        case WIRE_VARINT: {
            if (!read_varint(&p, end, &value)) goto malformed;
            PyObject *key = PyLong_FromUnsignedLongLong(tag >> 3), *number = PyLong_FromLongLong((int64_t)value);
            int failed = key == NULL || number == NULL || PyDict_SetItem(scalars, key, number) < 0;
            Py_XDECREF(key);
            Py_XDECREF(number);
            if (failed) goto done;
            break;
        }
        case WIRE_LEN: {
            if (!read_length(&p, end, &body, &length)) goto malformed;
            if (tag >> 3 != events_field) break;
            PyObject *event = PyBytes_FromStringAndSize((const char *)body, length);
            if (event == NULL || PyList_Append(events, event) < 0) {
                Py_XDECREF(event);
                goto done;
            }
            Py_DECREF(event);
            break;
        }
        case WIRE_FIXED64:
            if (end - p < 8) goto malformed;
            p += 8;
            break;
        case WIRE_FIXED32:
            if (end - p < 4) goto malformed;
            p += 4;
            break;
        default:
            goto malformed;
        }
    }
    result = PyTuple_Pack(2, scalars, events);
    goto done;
malformed:
    PyErr_SetString(PyExc_ValueError, "the request is not well-formed protobuf");
done:
    Py_XDECREF(scalars);
    Py_XDECREF(events);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *check_events(PyObject *module, PyObject *args) {
    PyObject *events;
    Limits limits;
    if (!PyArg_ParseTuple(args, "O!LLLn", &PyList_Type, &events, &limits.received_nanos, &limits.floor_seconds,
                          &limits.future_skew_nanos, &limits.max_event_bytes))
        return NULL;
    if (!need_configured()) return NULL;
    Py_ssize_t count = PyList_GET_SIZE(events);
    PyObject *results = PyList_New(count);
    if (results == NULL) return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *event = PyList_GET_ITEM(events, i);
        if (!PyBytes_Check(event)) {
            Py_DECREF(results);
            PyErr_SetString(PyExc_TypeError, "events must be bytes");
            return NULL;
        }
        PyObject *result = check_and_stamp((const uint8_t *)PyBytes_AS_STRING(event), PyBytes_GET_SIZE(event), &limits);
        if (result == NULL) {
            Py_DECREF(results);
            return NULL;
        }
        PyList_SET_ITEM(results, i, result);
    }
    return results;
}

static PyObject *well_formed(PyObject *module, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    if (!need_configured()) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int valid = walk(view.buf, (const uint8_t *)view.buf + view.len, 0, 0);
    PyBuffer_Release(&view);
    return PyBool_FromLong(valid);
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(messages, numbers): the Event schema (message 0) and the field numbers the checks read."},
    {"split", split, METH_VARARGS,
     "split(request, events_field) -> (varint fields by number, [event bytes]): a batch request's envelope."},
    {"check_events", check_events, METH_VARARGS,
     "check_events(events, received_nanos, floor_seconds, future_skew_nanos, max_event_bytes) -> "
     "[(event_id, stamped bytes, selects) or None]"},
    {"project", project, METH_VARARGS,
     "project(message, {from: to}) -> bytes: the named fields of `message`, renumbered, in their order."},
    {"join", join, METH_VARARGS, "join(items, number) -> bytes: `items` as the occurrences of field `number`."},
    {"configure_resolution", configure_resolution, METH_VARARGS,
     "configure_resolution(numbers): the field numbers apply_resolution() reads and writes."},
    {"apply_resolution", apply_resolution, METH_VARARGS,
     "apply_resolution(event, resolution) -> bytes: the event with the resolution's person and identifiers."},
    {"nonempty", nonempty, METH_VARARGS,
     "nonempty(message, path) -> bool: the string or message field at `path` is set and not empty."},
    {"well_formed", well_formed, METH_VARARGS,
     "well_formed(event) -> bool: the bytes are an Event this module can read (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "wayline_ingest._wire", "Ingest's hot loop: batch envelopes, event checks and stamps.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__wire(void) { return PyModule_Create(&module_definition); }

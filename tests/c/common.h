/*
 * Shared helpers for the C tests of the Beckon C ABI (the tests/c/test_*.c programs).
 *
 * - Checks: CHECK* record a failure (file:line, expected vs actual, and for
 *   error codes beckon_last_error_message()) and go on; REQUIRE* stop the
 *   program at once. t_finish() prints the tally and gives the exit status.
 * - t_counter: a waitable counter (pthread mutex + monotonic cond) whose waits
 *   are bounded, so that no test can hang forever.
 * - t_recorder: an event handler that copies every event of one client, checks
 *   the header's rules on the way (no NULL strings, one callback at a time, not
 *   on the main thread in thread mode), and can run a hook on the dispatcher.
 * - t_op: the result of one asynchronous operation, with an exactly-once check.
 *
 * Environment: BECKON_TEST_SLOW=1 (set by scripts/c-tests.sh under valgrind)
 * multiplies every timeout by 10 and lets tests pick smaller loop counts.
 * BECKON_TEST_SERVER_URL=ws://HOST:PORT (set by scripts/c-tests-server.sh) makes
 * the programs that exercise client behaviour talk to that beckon-server instead
 * of their memory:// hub: t_url() picks the URL, t_user() gives every user id a
 * per-run suffix (so that runs sharing a server never meet), and t_skip() prints
 * a visible "SKIP ...: memory:// only" line for each check that needs memory://.
 */
#ifndef BECKON_TEST_COMMON_H
#define BECKON_TEST_COMMON_H

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "beckon.h"

/* ---- environment ---------------------------------------------------------- */

static inline int t_slow(void) {
    const char *v = getenv("BECKON_TEST_SLOW");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* Timeouts for waits: 10 s, or 100 s under valgrind. */
static inline long t_timeout_ms(void) { return t_slow() ? 100000 : 10000; }

/* A loop count: `normal`, or `slow` under valgrind. */
static inline int t_loops(int normal, int slow) { return t_slow() ? slow : normal; }

static inline void t_sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline long t_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- where the hub is: memory:// or a beckon-server ------------------------------ */

/* The server URL from BECKON_TEST_SERVER_URL, or NULL (unset or empty). */
static inline const char *t_server_url(void) {
    const char *v = getenv("BECKON_TEST_SERVER_URL");
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static inline int t_on_server(void) { return t_server_url() != NULL; }

/* The URL a test's clients use: the server when one is given, else `memory_url`. */
static inline const char *t_url(const char *memory_url) {
    const char *server = t_server_url();
    return server != NULL ? server : memory_url;
}

/* A client's request_timeout_ms: the default, except over the network under
 * valgrind, where a round trip through an instrumented client can take seconds. */
static inline uint32_t t_request_timeout_ms(void) { return t_on_server() && t_slow() ? 60000u : 0u; }

#define T_MAX_USERS 128
#define T_USER_MAX 64 /* docs/SEMANTICS.md: user ids are 1 to 64 bytes */

static pthread_mutex_t t_users_lock = PTHREAD_MUTEX_INITIALIZER;
static char t_user_base[T_MAX_USERS][T_USER_MAX + 1];
static char t_user_name[T_MAX_USERS][T_USER_MAX + 1];
static int t_user_count;
static char t_run_suffix[16];

/* Six hex digits that differ between runs: from /dev/urandom, else pid and clock. */
static inline void t_make_run_suffix(void) {
    unsigned long bits = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        if (fread(&bits, sizeof bits, 1, f) != 1) bits = 0;
        fclose(f);
    }
    if (bits == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        bits = (unsigned long)getpid() * 2654435761ul ^ (unsigned long)ts.tv_nsec ^ (unsigned long)ts.tv_sec;
    }
    snprintf(t_run_suffix, sizeof t_run_suffix, "%06lx", bits & 0xfffffful);
}

/* This run's suffix for user ids (made on first use). */
static inline const char *t_suffix(void) {
    pthread_mutex_lock(&t_users_lock);
    if (t_run_suffix[0] == '\0') t_make_run_suffix();
    pthread_mutex_unlock(&t_users_lock);
    return t_run_suffix;
}

/* The user id a test calls `base`: `base` itself on memory:// (each process has
 * its own hubs), "base.SUFFIX" on a server, with one random suffix per run.
 * Static storage (`base` may be a temporary buffer): the same pointer for the
 * same base every time; thread-safe. */
static inline const char *t_user(const char *base) {
    int server = t_on_server();
    pthread_mutex_lock(&t_users_lock);
    if (server && t_run_suffix[0] == '\0') t_make_run_suffix();
    const char *found = NULL;
    for (int i = 0; i < t_user_count && found == NULL; i++)
        if (strcmp(t_user_base[i], base) == 0) found = t_user_name[i];
    if (found == NULL) {
        size_t len = strlen(base) + (server ? 1 + strlen(t_run_suffix) : 0);
        if (t_user_count >= T_MAX_USERS || len > T_USER_MAX) {
            pthread_mutex_unlock(&t_users_lock);
            fprintf(stderr, "FATAL: t_user(\"%s\"): too many users or too long a name\n", base);
            _exit(2);
        }
        snprintf(t_user_base[t_user_count], sizeof t_user_base[0], "%s", base);
        if (server)
            snprintf(t_user_name[t_user_count], sizeof t_user_name[0], "%s.%s", base, t_run_suffix);
        else
            snprintf(t_user_name[t_user_count], sizeof t_user_name[0], "%s", base);
        found = t_user_name[t_user_count++];
    }
    pthread_mutex_unlock(&t_users_lock);
    return found;
}

/* ---- checks --------------------------------------------------------------- */

static pthread_mutex_t t_print_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_long t_checks;
static atomic_long t_failures;
static atomic_long t_skips;
static pthread_t t_main_thread;
static const char *t_program = "test";

static inline void t_log(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    pthread_mutex_lock(&t_print_lock);
    vfprintf(stdout, fmt, args);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&t_print_lock);
    va_end(args);
}

static inline void t_fail_at(const char *file, int line, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    atomic_fetch_add(&t_failures, 1);
    pthread_mutex_lock(&t_print_lock);
    fflush(stdout);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    fflush(stderr);
    /* also on stdout, so that the log reads in order */
    fprintf(stdout, "FAIL %s:%d (see stderr)\n", file, line);
    fflush(stdout);
    pthread_mutex_unlock(&t_print_lock);
    va_end(args);
}

static inline void t_abort(void) {
    pthread_mutex_lock(&t_print_lock);
    fprintf(stderr, "%s: FATAL: giving up after %ld failed check(s)\n", t_program,
            (long)atomic_load(&t_failures));
    fflush(stderr);
    fflush(stdout);
    _exit(1);
}

#define T_FAIL(...) t_fail_at(__FILE__, __LINE__, __VA_ARGS__)

#define CHECK(cond)                                                        \
    do {                                                                   \
        atomic_fetch_add(&t_checks, 1);                                    \
        if (!(cond)) T_FAIL("expected: %s", #cond);                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                               \
    do {                                                                   \
        atomic_fetch_add(&t_checks, 1);                                    \
        if (!(cond)) T_FAIL(__VA_ARGS__);                                  \
    } while (0)

#define REQUIRE(cond)                                                      \
    do {                                                                   \
        atomic_fetch_add(&t_checks, 1);                                    \
        if (!(cond)) {                                                     \
            T_FAIL("required: %s", #cond);                                 \
            t_abort();                                                     \
        }                                                                  \
    } while (0)

#define CHECK_INT(actual, expected)                                        \
    do {                                                                   \
        long long t_a_ = (long long)(actual), t_e_ = (long long)(expected); \
        atomic_fetch_add(&t_checks, 1);                                    \
        if (t_a_ != t_e_)                                                  \
            T_FAIL("%s: expected %lld (%s), got %lld", #actual, t_e_,      \
                   #expected, t_a_);                                       \
    } while (0)

#define REQUIRE_INT(actual, expected)                                      \
    do {                                                                   \
        long long t_a_ = (long long)(actual), t_e_ = (long long)(expected); \
        atomic_fetch_add(&t_checks, 1);                                    \
        if (t_a_ != t_e_) {                                                \
            T_FAIL("%s: expected %lld (%s), got %lld", #actual, t_e_,      \
                   #expected, t_a_);                                       \
            t_abort();                                                     \
        }                                                                  \
    } while (0)

#define CHECK_STR(actual, expected)                                        \
    do {                                                                   \
        const char *t_a_ = (actual), *t_e_ = (expected);                   \
        atomic_fetch_add(&t_checks, 1);                                    \
        if (t_a_ == NULL || strcmp(t_a_, t_e_) != 0)                       \
            T_FAIL("%s: expected \"%s\", got %s%s%s", #actual, t_e_,       \
                   t_a_ ? "\"" : "", t_a_ ? t_a_ : "NULL", t_a_ ? "\"" : ""); \
    } while (0)

/* An error code: compares with `expected`, copies beckon_last_error_message()
 * right away (it is valid only until the next beckon_* call), and for an error
 * checks the message is non-empty and names `field` (NULL: any message). */
static inline int t_check_code(const char *file, int line, const char *expr,
                               beckon_error got, beckon_error expected,
                               const char *field) {
    char message[1024];
    const char *m = beckon_last_error_message();
    snprintf(message, sizeof message, "%s", m ? m : "(NULL)");
    atomic_fetch_add(&t_checks, 1);
    int ok = 1;
    if (m == NULL) {
        t_fail_at(file, line, "%s: beckon_last_error_message() returned NULL", expr);
        ok = 0;
    }
    if (got != expected) {
        t_fail_at(file, line, "%s: expected %s (%d), got %s (%d), message \"%s\"", expr,
                  beckon_error_name(expected), expected, beckon_error_name(got), got, message);
        return 0;
    }
    if (expected == BECKON_OK) {
        if (message[0] != '\0') {
            t_fail_at(file, line, "%s: OK but the last error message is \"%s\" (want \"\")",
                      expr, message);
            ok = 0;
        }
    } else if (message[0] == '\0') {
        t_fail_at(file, line, "%s: %s with an empty message", expr, beckon_error_name(got));
        ok = 0;
    } else if (field != NULL && strstr(message, field) == NULL) {
        t_fail_at(file, line, "%s: %s, but the message \"%s\" does not name \"%s\"", expr,
                  beckon_error_name(got), message, field);
        ok = 0;
    }
    if (ok && expected != BECKON_OK)
        t_log("  ok  %-18s <- %s  [\"%s\"]", beckon_error_name(got), expr, message);
    return ok;
}

#define CHECK_CODE(expr, expected, field)                                  \
    t_check_code(__FILE__, __LINE__, #expr, (expr), (expected), (field))

#define REQUIRE_CODE(expr, expected, field)                                \
    do {                                                                   \
        if (!t_check_code(__FILE__, __LINE__, #expr, (expr), (expected), (field))) \
            t_abort();                                                     \
    } while (0)

static inline void t_start(const char *program) {
    t_program = program;
    t_main_thread = pthread_self();
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_log("%s: beckon %s (ABI %u)%s", program, beckon_version(), beckon_abi_version(),
          t_slow() ? ", slow mode (valgrind)" : "");
    if (t_on_server())
        t_log("%s: on the beckon-server at %s; user ids end in \".%s\"", program, t_server_url(), t_suffix());
}

/* A check this run cannot make because it needs a memory:// hub: said aloud,
 * never silently dropped. */
static inline void t_skip(const char *check, const char *why) {
    atomic_fetch_add(&t_skips, 1);
    t_log("SKIP %s/%s: memory:// only (%s)", t_program, check, why);
}

/* The exit status of main. */
static inline int t_finish(void) {
    long failures = atomic_load(&t_failures);
    long checks = atomic_load(&t_checks);
    long skips = atomic_load(&t_skips);
    if (failures == 0) {
        if (skips > 0)
            t_log("%s: OK, %ld checks passed, %ld skipped (memory:// only)", t_program, checks, skips);
        else
            t_log("%s: OK, %ld checks passed", t_program, checks);
        return 0;
    }
    t_log("%s: FAILED, %ld of %ld checks failed", t_program, failures, checks);
    return 1;
}

#define T_SECTION(...)                                                     \
    do {                                                                   \
        t_log("");                                                         \
        t_log("== " __VA_ARGS__);                                          \
    } while (0)

/* ---- waitable counter ------------------------------------------------------ */

typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    long value;
} t_counter;

static inline void t_counter_init(t_counter *c) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->mutex, NULL);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    c->value = 0;
}

static inline void t_counter_destroy(t_counter *c) {
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mutex);
}

static inline long t_counter_add(t_counter *c, long n) {
    pthread_mutex_lock(&c->mutex);
    long v = (c->value += n);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mutex);
    return v;
}

static inline long t_counter_get(t_counter *c) {
    pthread_mutex_lock(&c->mutex);
    long v = c->value;
    pthread_mutex_unlock(&c->mutex);
    return v;
}

/* Waits until the value is >= target; 1 if it got there, 0 on timeout. */
static inline int t_counter_wait(t_counter *c, long target, long timeout_ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mutex);
    int rc = 0;
    while (c->value < target && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&c->cond, &c->mutex, &deadline);
    int reached = c->value >= target;
    pthread_mutex_unlock(&c->mutex);
    return reached;
}

#define WAIT_COUNTER(c, target, what)                                      \
    do {                                                                   \
        atomic_fetch_add(&t_checks, 1);                                    \
        if (!t_counter_wait((c), (target), t_timeout_ms())) {              \
            T_FAIL("timed out after %ld ms waiting for %s: have %ld, want %ld", \
                   t_timeout_ms(), (what), t_counter_get(c), (long)(target)); \
            t_abort();                                                     \
        }                                                                  \
    } while (0)

/* Bumped by every recorded event and operation result: t_wait_until sleeps on it. */
static t_counter t_changes = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static inline void t_changed(void) { t_counter_add(&t_changes, 1); }

/* Waits until pred(arg) is true (re-checked after every change, and every 50 ms). */
static inline int t_wait_until(int (*pred)(void *), void *arg, long timeout_ms) {
    long deadline = t_now_ms() + timeout_ms;
    for (;;) {
        long seen = t_counter_get(&t_changes);
        if (pred(arg)) return 1;
        long left = deadline - t_now_ms();
        if (left <= 0) return pred(arg);
        /* t_changes uses the default (realtime) cond clock: use short timed waits */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long step = left < 50 ? left : 50;
        ts.tv_nsec += step * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&t_changes.mutex);
        if (t_changes.value == seen) pthread_cond_timedwait(&t_changes.cond, &t_changes.mutex, &ts);
        pthread_mutex_unlock(&t_changes.mutex);
    }
}

/* ---- copies of what callbacks receive -------------------------------------- */

typedef struct {
    char *user_id;
    int32_t state;
} t_invitee;

static inline char *t_strdup(const char *s) {
    if (s == NULL) return NULL;
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy == NULL) {
        fprintf(stderr, "out of memory\n");
        _exit(2);
    }
    memcpy(copy, s, n);
    return copy;
}

static inline t_invitee *t_copy_invitees(const beckon_invitee *list, size_t n) {
    if (n == 0) return NULL;
    t_invitee *copy = calloc(n, sizeof *copy);
    if (copy == NULL) _exit(2);
    for (size_t i = 0; i < n; i++) {
        copy[i].user_id = t_strdup(list[i].user_id ? list[i].user_id : "(NULL)");
        copy[i].state = list[i].state;
    }
    return copy;
}

static inline void t_free_invitees(t_invitee *list, size_t n) {
    if (list == NULL) return;
    for (size_t i = 0; i < n; i++) free(list[i].user_id);
    free(list);
}

/* The state of `user` in a copied list, or -1 if absent. */
static inline int t_invitee_state(const t_invitee *list, size_t n, const char *user) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].user_id, user) == 0) return list[i].state;
    return -1;
}

/* ---- event recorder --------------------------------------------------------- */

typedef struct {
    int32_t kind;
    char *invitation_id;
    char *inviter;
    char *user_id;
    int32_t state;
    char *extended_data;
    t_invitee *invitees;
    size_t invitee_count;
    int invitees_was_null;
    int has_notification;
    uint32_t notification_struct_size;
    char *n_title, *n_message, *n_resource_id, *n_payload;
    uint32_t seconds_left;
    int32_t connection_state;
    int32_t connection_reason;
    /* ABI 2.2 (INVITATION_PUSH_RESULT): recorded only when built against a
     * 2.2 or later header; NULL and 0 otherwise. */
    int32_t push_provider;
    int32_t push_outcome;
    char *device_id;
    char *push_reason;
    pthread_t thread;
    long seq; /* position among this recorder's events and op callbacks */
} t_event;

typedef struct t_recorder t_recorder;
struct t_recorder {
    const char *name;
    beckon_client *client;
    int poll_mode;              /* callbacks run on the polling thread, not a dispatcher */
    pthread_mutex_t mutex;
    t_event *events;            /* fixed capacity: entries never move */
    size_t count, capacity;
    long seq;
    atomic_int depth;           /* callbacks of this client running right now */
    atomic_int overlaps;        /* times two callbacks of this client overlapped */
    /* runs on the dispatcher after the event is recorded (may call the API) */
    void (*hook)(t_recorder *rec, const beckon_event *event);
    void *extra;
    int answer;                 /* for hooks: 1 accept, 2 refuse each INVITATION_RECEIVED */
    const char *answer_data;
};

static inline void t_recorder_init(t_recorder *rec, const char *name, size_t capacity) {
    memset(rec, 0, sizeof *rec);
    rec->name = name;
    pthread_mutex_init(&rec->mutex, NULL);
    rec->capacity = capacity;
    rec->events = calloc(capacity, sizeof *rec->events);
    if (rec->events == NULL) _exit(2);
}

static inline void t_recorder_destroy(t_recorder *rec) {
    for (size_t i = 0; i < rec->count; i++) {
        t_event *e = &rec->events[i];
        free(e->invitation_id);
        free(e->inviter);
        free(e->user_id);
        free(e->extended_data);
        free(e->n_title);
        free(e->n_message);
        free(e->n_resource_id);
        free(e->n_payload);
        free(e->device_id);
        free(e->push_reason);
        t_free_invitees(e->invitees, e->invitee_count);
    }
    free(rec->events);
    rec->events = NULL;
    rec->count = 0;
    pthread_mutex_destroy(&rec->mutex);
}

/* Called at the start and end of every callback that belongs to `rec`'s client. */
static inline void t_enter(t_recorder *rec, const char *what) {
    if (rec == NULL) return;
    if (atomic_fetch_add(&rec->depth, 1) != 0) {
        atomic_fetch_add(&rec->overlaps, 1);
        T_FAIL("%s: %s ran while another callback of the same client was running", rec->name, what);
    }
    if (!rec->poll_mode && pthread_equal(pthread_self(), t_main_thread))
        T_FAIL("%s: %s ran on the main thread (thread-mode client)", rec->name, what);
}

static inline void t_leave(t_recorder *rec) {
    if (rec != NULL) atomic_fetch_sub(&rec->depth, 1);
}

static inline long t_next_seq(t_recorder *rec) {
    pthread_mutex_lock(&rec->mutex);
    long s = ++rec->seq;
    pthread_mutex_unlock(&rec->mutex);
    return s;
}

static inline char *t_checked_str(t_recorder *rec, const char *kind, const char *field,
                                  const char *value) {
    if (value == NULL) {
        T_FAIL("%s: event %s has %s == NULL (the header promises \"\")", rec->name, kind, field);
        return t_strdup("");
    }
    return t_strdup(value);
}

/* The event handler: install with beckon_client_set_event_handler(c, t_record_event, rec). */
static inline void t_record_event(void *user_data, const beckon_event *e) {
    t_recorder *rec = user_data;
    const char *kind = beckon_event_kind_name(e->kind);
    t_enter(rec, "an event handler");
    t_event copy;
    memset(&copy, 0, sizeof copy);
    copy.kind = e->kind;
    copy.invitation_id = t_checked_str(rec, kind, "invitation_id", e->invitation_id);
    copy.inviter = t_checked_str(rec, kind, "inviter", e->inviter);
    copy.user_id = t_checked_str(rec, kind, "user_id", e->user_id);
    copy.extended_data = t_checked_str(rec, kind, "extended_data", e->extended_data);
    copy.state = e->state;
    copy.invitee_count = e->invitee_count;
    copy.invitees_was_null = e->invitees == NULL;
    if (e->invitee_count > 0 && e->invitees == NULL)
        T_FAIL("%s: event %s has invitee_count %zu but invitees == NULL", rec->name, kind,
               e->invitee_count);
    else
        copy.invitees = t_copy_invitees(e->invitees, e->invitee_count);
    if (e->notification != NULL && e->notification->struct_size != sizeof(beckon_notification_config)) {
        /* Not a live beckon_notification_config (the library sets struct_size):
         * do not follow its string pointers, they would be garbage too. */
        copy.has_notification = 1;
        copy.notification_struct_size = e->notification->struct_size;
        T_FAIL("%s: event %s: notification->struct_size is %u, want %zu: the pointer does not point "
               "to a live notification (dangling?)",
               rec->name, kind, (unsigned)e->notification->struct_size, sizeof(beckon_notification_config));
        copy.n_title = t_strdup("(invalid)");
        copy.n_message = t_strdup("(invalid)");
        copy.n_resource_id = t_strdup("(invalid)");
        copy.n_payload = t_strdup("(invalid)");
    } else if (e->notification != NULL) {
        copy.has_notification = 1;
        copy.notification_struct_size = e->notification->struct_size;
        copy.n_title = t_checked_str(rec, kind, "notification->title", e->notification->title);
        copy.n_message = t_checked_str(rec, kind, "notification->message", e->notification->message);
        copy.n_resource_id =
            t_checked_str(rec, kind, "notification->resource_id", e->notification->resource_id);
        copy.n_payload = t_checked_str(rec, kind, "notification->payload", e->notification->payload);
    }
    copy.seconds_left = e->seconds_left;
    copy.connection_state = e->connection_state;
    copy.connection_reason = e->connection_reason;
#ifdef BECKON_EVENT_INVITATION_PUSH_RESULT
    /* Fields of 2.2: a program built against an older header (test_abi_2_0,
     * test_abi_2_1) does not know them and must not read them. */
    copy.push_provider = e->push_provider;
    copy.push_outcome = e->push_outcome;
    copy.device_id = t_checked_str(rec, kind, "device_id", e->device_id);
    copy.push_reason = t_checked_str(rec, kind, "push_reason", e->push_reason);
#endif
    copy.thread = pthread_self();
    pthread_mutex_lock(&rec->mutex);
    copy.seq = ++rec->seq;
    if (rec->count < rec->capacity) {
        rec->events[rec->count++] = copy;
        pthread_mutex_unlock(&rec->mutex);
    } else {
        pthread_mutex_unlock(&rec->mutex);
        T_FAIL("%s: more than %zu events; raise the recorder's capacity", rec->name, rec->capacity);
    }
    t_changed();
    if (rec->hook != NULL) rec->hook(rec, e);
    t_leave(rec);
}

/* Number of recorded events matching: kind (0 = any), invitation id and user id
 * (NULL = any), state (-1 = any). */
static inline size_t t_count_events(t_recorder *rec, int32_t kind, const char *invitation_id,
                                    const char *user_id, int32_t state) {
    size_t n = 0;
    pthread_mutex_lock(&rec->mutex);
    for (size_t i = 0; i < rec->count; i++) {
        const t_event *e = &rec->events[i];
        if (kind != 0 && e->kind != kind) continue;
        if (invitation_id != NULL && strcmp(e->invitation_id, invitation_id) != 0) continue;
        if (user_id != NULL && strcmp(e->user_id, user_id) != 0) continue;
        if (state != -1 && e->state != state) continue;
        n++;
    }
    pthread_mutex_unlock(&rec->mutex);
    return n;
}

/* The first matching event (as t_count_events), or NULL. Entries never move. */
static inline const t_event *t_find_event(t_recorder *rec, int32_t kind, const char *invitation_id,
                                          const char *user_id, int32_t state) {
    const t_event *found = NULL;
    pthread_mutex_lock(&rec->mutex);
    for (size_t i = 0; i < rec->count && found == NULL; i++) {
        const t_event *e = &rec->events[i];
        if (kind != 0 && e->kind != kind) continue;
        if (invitation_id != NULL && strcmp(e->invitation_id, invitation_id) != 0) continue;
        if (user_id != NULL && strcmp(e->user_id, user_id) != 0) continue;
        if (state != -1 && e->state != state) continue;
        found = e;
    }
    pthread_mutex_unlock(&rec->mutex);
    return found;
}

static inline size_t t_event_count(t_recorder *rec) {
    pthread_mutex_lock(&rec->mutex);
    size_t n = rec->count;
    pthread_mutex_unlock(&rec->mutex);
    return n;
}

typedef struct {
    t_recorder *rec;
    int32_t kind;
    const char *invitation_id;
    const char *user_id;
    int32_t state;
    size_t at_least;
} t_event_query;

static inline int t_event_query_pred(void *arg) {
    t_event_query *q = arg;
    return t_count_events(q->rec, q->kind, q->invitation_id, q->user_id, q->state) >= q->at_least;
}

/* Waits (bounded) for at least `n` matching events; fails the program on timeout. */
#define WAIT_EVENTS(rec, kind, id, user, state, n)                          \
    do {                                                                    \
        t_event_query t_q_ = {(rec), (kind), (id), (user), (state), (n)};   \
        atomic_fetch_add(&t_checks, 1);                                     \
        if (!t_wait_until(t_event_query_pred, &t_q_, t_timeout_ms())) {     \
            T_FAIL("timed out waiting for %zu %s event(s) on %s (id %s, user %s, state %d): have %zu", \
                   (size_t)(n), beckon_event_kind_name(kind), (rec)->name,  \
                   t_q_.invitation_id ? t_q_.invitation_id : "*",           \
                   t_q_.user_id ? t_q_.user_id : "*", (int)(state),         \
                   t_count_events((rec), (kind), (id), (user), (state)));   \
            t_dump_events(rec);                                             \
            t_abort();                                                      \
        }                                                                   \
    } while (0)

static inline void t_dump_events(t_recorder *rec) {
    pthread_mutex_lock(&rec->mutex);
    t_log("  events of %s (%zu):", rec->name, rec->count);
    for (size_t i = 0; i < rec->count; i++) {
        const t_event *e = &rec->events[i];
        t_log("    #%ld %s id=%s inviter=%s user=%s state=%s data=\"%.40s\" invitees=%zu conn=%d/%d",
              e->seq, beckon_event_kind_name(e->kind), e->invitation_id, e->inviter, e->user_id,
              beckon_invitee_state_name(e->state), e->extended_data, e->invitee_count,
              e->connection_state, e->connection_reason);
    }
    pthread_mutex_unlock(&rec->mutex);
}

/* ---- operation results ------------------------------------------------------ */

typedef struct {
    atomic_int calls;    /* callbacks started (exactly once promised) */
    atomic_int done;     /* callbacks finished recording: what WAIT_OP waits for */
    beckon_error error;
    char message[512];
    char invitation_id[80];
    t_invitee *invitees;
    size_t invitee_count;
    pthread_t thread;
    long seq;            /* from `rec`, if set */
    t_recorder *rec;     /* the client's recorder: one-at-a-time and ordering checks */
    const char *what;
    void (*hook)(void *op); /* runs in the callback after recording (may call the API) */
    void *extra;
} t_op;

static inline void t_op_init(t_op *op, const char *what, t_recorder *rec) {
    memset(op, 0, sizeof *op);
    op->what = what;
    op->rec = rec;
    op->error = -1;
}

static inline void t_op_reset(t_op *op) {
    t_free_invitees(op->invitees, op->invitee_count);
    op->invitees = NULL;
    op->invitee_count = 0;
}

static inline int t_op_begin(t_op *op, beckon_error error, const char *message) {
    int calls = atomic_fetch_add(&op->calls, 1) + 1;
    if (calls > 1) {
        T_FAIL("callback of %s ran %d times (exactly once promised)", op->what ? op->what : "an operation",
               calls);
        return 0;
    }
    t_enter(op->rec, op->what ? op->what : "an operation callback");
    op->error = error;
    op->thread = pthread_self();
    if (message == NULL) {
        T_FAIL("%s: result error_message is NULL", op->what);
        op->message[0] = '\0';
    } else {
        snprintf(op->message, sizeof op->message, "%s", message);
        if (error == BECKON_OK && message[0] != '\0')
            T_FAIL("%s: OK with error_message \"%s\" (want \"\")", op->what, message);
        if (error != BECKON_OK && message[0] == '\0')
            T_FAIL("%s: %s with an empty error_message", op->what, beckon_error_name(error));
    }
    if (op->rec != NULL) op->seq = t_next_seq(op->rec);
    return 1;
}

static inline void t_op_end(t_op *op) {
    t_recorder *rec = op->rec;
    if (op->hook != NULL) op->hook(op);
    /* after this store the waiter may return and `op` (often on its stack) may go */
    atomic_store(&op->done, 1);
    t_leave(rec);
    t_changed();
}

/* For a call that returned an error: no callback will come; mark the op done. */
static inline void t_op_no_callback(t_op *op, beckon_error rc) {
    op->error = rc;
    atomic_fetch_add(&op->calls, 1);
    atomic_store(&op->done, 1);
    t_changed();
}

static inline void t_on_result(void *user_data, const beckon_result *r) {
    t_op *op = user_data;
    if (!t_op_begin(op, r->error, r->error_message)) return;
    t_op_end(op);
}

static inline int t_is_invitation_id(const char *id) {
    if (id == NULL || strlen(id) != 32) return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

static inline void t_on_send(void *user_data, const beckon_send_result *r) {
    t_op *op = user_data;
    if (!t_op_begin(op, r->error, r->error_message)) return;
    if (r->invitation_id == NULL) {
        T_FAIL("%s: send result invitation_id is NULL", op->what);
    } else {
        snprintf(op->invitation_id, sizeof op->invitation_id, "%s", r->invitation_id);
        if (r->error == BECKON_OK && !t_is_invitation_id(r->invitation_id))
            T_FAIL("%s: invitation id \"%s\" is not 32 lowercase hex digits", op->what, r->invitation_id);
        if (r->error != BECKON_OK && r->invitation_id[0] != '\0')
            T_FAIL("%s: error %s but invitation_id \"%s\" (want \"\")", op->what,
                   beckon_error_name(r->error), r->invitation_id);
    }
    if (r->error != BECKON_OK && r->error_invitee_count != 0)
        T_FAIL("%s: error %s but %zu error invitees (want 0)", op->what, beckon_error_name(r->error),
               r->error_invitee_count);
    if (r->error_invitee_count > 0 && r->error_invitees == NULL)
        T_FAIL("%s: error_invitee_count %zu with error_invitees NULL", op->what, r->error_invitee_count);
    else {
        op->invitee_count = r->error_invitee_count;
        op->invitees = t_copy_invitees(r->error_invitees, r->error_invitee_count);
    }
    t_op_end(op);
}

static inline void t_on_cancel(void *user_data, const beckon_cancel_result *r) {
    t_op *op = user_data;
    if (!t_op_begin(op, r->error, r->error_message)) return;
    if (r->error != BECKON_OK && r->error_invitee_count != 0)
        T_FAIL("%s: error %s but %zu error invitees (want 0)", op->what, beckon_error_name(r->error),
               r->error_invitee_count);
    if (r->error_invitee_count > 0 && r->error_invitees == NULL)
        T_FAIL("%s: error_invitee_count %zu with error_invitees NULL", op->what, r->error_invitee_count);
    else {
        op->invitee_count = r->error_invitee_count;
        op->invitees = t_copy_invitees(r->error_invitees, r->error_invitee_count);
    }
    t_op_end(op);
}

/* True if `field` is NULL or appears in `message`. */
static inline int t_mentions(const char *message, const char *field) {
    return field == NULL || strstr(message, field) != NULL;
}

static inline int t_op_done_pred(void *arg) { return atomic_load(&((t_op *)arg)->done) >= 1; }

/* Waits (bounded) for the callback of `op`; fails the program on timeout. */
#define WAIT_OP(op)                                                         \
    do {                                                                    \
        atomic_fetch_add(&t_checks, 1);                                     \
        if (!t_wait_until(t_op_done_pred, (op), t_timeout_ms())) {          \
            T_FAIL("timed out after %ld ms waiting for the callback of %s", \
                   t_timeout_ms(), (op)->what);                             \
            t_abort();                                                      \
        }                                                                   \
    } while (0)

/* Waits for the callback, then checks its code (and that the message names `field`). */
#define CHECK_OP(op, expected, field)                                       \
    do {                                                                    \
        WAIT_OP(op);                                                        \
        atomic_fetch_add(&t_checks, 1);                                     \
        if ((op)->error != (expected))                                      \
            T_FAIL("callback of %s: expected %s (%d), got %s (%d), message \"%s\"", (op)->what, \
                   beckon_error_name(expected), (int)(expected),            \
                   beckon_error_name((op)->error), (int)(op)->error, (op)->message); \
        else if (!t_mentions((op)->message, (field)))                    \
            T_FAIL("callback of %s: %s, but the message \"%s\" does not name \"%s\"", \
                   (op)->what, beckon_error_name((op)->error), (op)->message, \
                   (const char *)(field));                                  \
        else if ((expected) != BECKON_OK)                                   \
            t_log("  ok  %-18s <- callback of %s  [\"%s\"]",                \
                  beckon_error_name((op)->error), (op)->what, (op)->message); \
    } while (0)

/* ---- clients ------------------------------------------------------------------ */

static inline beckon_client *t_client_new(const char *url, const char *device_id, int32_t mode) {
    beckon_client_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.server_url = url;
    config.device_id = device_id;
    config.dispatch_mode = mode;
    config.request_timeout_ms = t_request_timeout_ms();
    beckon_client *client = NULL;
    REQUIRE_CODE(beckon_client_new(&config, &client), BECKON_OK, NULL);
    REQUIRE(client != NULL);
    return client;
}

/* A thread-mode client with a recorder as its event handler. */
static inline beckon_client *t_client_with_recorder(const char *url, const char *device_id,
                                                    t_recorder *rec) {
    beckon_client *client = t_client_new(url, device_id, BECKON_DISPATCH_THREAD);
    rec->client = client;
    REQUIRE_CODE(beckon_client_set_event_handler(client, t_record_event, rec), BECKON_OK, NULL);
    return client;
}

/* Logs in (thread mode) and waits for the callback; fails the program unless OK. */
static inline void t_login(beckon_client *client, const char *user, const char *token,
                           t_recorder *rec) {
    t_op op;
    t_op_init(&op, "login", rec);
    REQUIRE_CODE(beckon_client_login(client, user, token, t_on_result, &op), BECKON_OK, NULL);
    WAIT_OP(&op);
    if (op.error != BECKON_OK) {
        T_FAIL("login of %s: %s: %s", user, beckon_error_name(op.error), op.message);
        t_abort();
    }
}

/* beckon_client_poll as a count: how many callbacks ran, or the negated error
 * code (the tests that count callbacks read it so). */
static inline int t_poll(beckon_client *client, int32_t timeout_ms) {
    uint32_t ran = UINT32_MAX;
    beckon_error rc = beckon_client_poll(client, timeout_ms, &ran);
    if (rc != BECKON_OK) {
        if (ran != 0) T_FAIL("beckon_client_poll: %s but *out_ran is %u (want 0)", beckon_error_name(rc), ran);
        return -rc;
    }
    return ran > INT32_MAX ? INT32_MAX : (int)ran;
}

/* An invitation config with the given timeout and extended data, no notification. */
static inline beckon_invitation_config t_invitation(uint32_t timeout, const char *data) {
    beckon_invitation_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.timeout_seconds = timeout;
    c.extended_data = data;
    return c;
}

/* A string of `n` copies of `ch` (malloc'd). */
static inline char *t_repeat(char ch, size_t n) {
    char *s = malloc(n + 1);
    if (s == NULL) _exit(2);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

#endif /* BECKON_TEST_COMMON_H */

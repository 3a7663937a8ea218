/*
 * test_controls: what ABI 2.1 added, from C.
 *
 *  - Per-operation configs: beckon_accept_invitation_ex,
 *    beckon_refuse_invitation_ex and beckon_cancel_invitation_ex carry their
 *    fields (extended data, the invitees to cancel for) and a request timeout;
 *    a NULL config means the defaults; beckon_invitation_config's
 *    request_timeout_ms is accepted.
 *  - Mutual free: two clients freeing each other from their callbacks at the
 *    same time do not hang; one free returns BECKON_ERROR_WOULD_DEADLOCK and
 *    leaves that client live, to be freed afterwards.
 *  - Log delivery: a queued handler runs outside the library's locks (it calls
 *    the API), and beckon_set_log_config returns only when the handler it
 *    replaces is no longer running nor will be called, with threads logging
 *    all the while, in both delivery modes.
 */
#include "common.h"

#define HUB "memory://c-controls"

/* ---- per-operation configs ---------------------------------------------------- */

static void operation_configs(void) {
    T_SECTION("accept/refuse/cancel _ex: their fields, their timeout, NULL for defaults");
    t_recorder alice_events, bob_events, carol_events;
    t_recorder_init(&alice_events, "alice", 256);
    t_recorder_init(&bob_events, "bob", 256);
    t_recorder_init(&carol_events, "carol", 256);
    beckon_client *alice = t_client_with_recorder(t_url(HUB), NULL, &alice_events);
    beckon_client *bob = t_client_with_recorder(t_url(HUB), NULL, &bob_events);
    beckon_client *carol = t_client_with_recorder(t_url(HUB), NULL, &carol_events);
    const char *alice_id = t_user("alice"), *bob_id = t_user("bob"), *carol_id = t_user("carol");
    t_login(alice, alice_id, NULL, &alice_events);
    t_login(bob, bob_id, NULL, &bob_events);
    t_login(carol, carol_id, NULL, &carol_events);

    const char *both[] = {bob_id, carol_id};
    beckon_invitation_config ic = t_invitation(60, "call me");
    ic.request_timeout_ms = 20000;
    t_op sent;
    t_op_init(&sent, "send with its own timeout", &alice_events);
    REQUIRE_CODE(beckon_send_invitation(alice, both, 2, &ic, t_on_send, &sent), BECKON_OK, NULL);
    CHECK_OP(&sent, BECKON_OK, NULL);
    WAIT_EVENTS(&bob_events, BECKON_EVENT_INVITATION_RECEIVED, sent.invitation_id, NULL, -1, 1);

    beckon_answer_config answer;
    memset(&answer, 0, sizeof answer);
    answer.struct_size = sizeof answer;
    answer.request_timeout_ms = 15000;
    answer.extended_data = "on my way";
    t_op accepted;
    t_op_init(&accepted, "accept_ex", &bob_events);
    REQUIRE_CODE(beckon_accept_invitation_ex(bob, sent.invitation_id, &answer, t_on_result, &accepted), BECKON_OK,
                 NULL);
    CHECK_OP(&accepted, BECKON_OK, NULL);
    WAIT_EVENTS(&alice_events, BECKON_EVENT_INVITATION_ACCEPTED, sent.invitation_id, bob_id, -1, 1);
    const t_event *seen = t_find_event(&alice_events, BECKON_EVENT_INVITATION_ACCEPTED, sent.invitation_id, bob_id, -1);
    CHECK(seen != NULL && strcmp(seen->extended_data, "on my way") == 0);

    /* Cancel for carol alone, by list, with extended data. */
    beckon_cancel_config cancel;
    memset(&cancel, 0, sizeof cancel);
    cancel.struct_size = sizeof cancel;
    cancel.invitees = &carol_id;
    cancel.invitee_count = 1;
    cancel.extended_data = "never mind";
    cancel.request_timeout_ms = 5000;
    t_op cancelled;
    t_op_init(&cancelled, "cancel_ex for carol", &alice_events);
    REQUIRE_CODE(beckon_cancel_invitation_ex(alice, sent.invitation_id, &cancel, t_on_cancel, &cancelled), BECKON_OK,
                 NULL);
    CHECK_OP(&cancelled, BECKON_OK, NULL);
    CHECK_INT(cancelled.invitee_count, 0);
    WAIT_EVENTS(&carol_events, BECKON_EVENT_INVITATION_CANCELLED, sent.invitation_id, NULL, -1, 1);
    seen = t_find_event(&carol_events, BECKON_EVENT_INVITATION_CANCELLED, sent.invitation_id, NULL, -1);
    CHECK(seen != NULL && strcmp(seen->extended_data, "never mind") == 0);

    /* A NULL config: the defaults. Bob already accepted, so refusing fails as
     * the plain function would. */
    t_op refused;
    t_op_init(&refused, "refuse_ex, NULL config, after accepting", &bob_events);
    REQUIRE_CODE(beckon_refuse_invitation_ex(bob, sent.invitation_id, NULL, t_on_result, &refused), BECKON_OK, NULL);
    CHECK_OP(&refused, BECKON_ERROR_ALREADY_ANSWERED, NULL);

    /* Fields are checked and named as config fields. */
    const char *bad[] = {"no spaces allowed"};
    cancel.invitees = bad;
    CHECK_CODE(beckon_cancel_invitation_ex(alice, sent.invitation_id, &cancel, t_on_cancel, NULL),
               BECKON_ERROR_INVALID_ARGUMENT, "config.invitees[0]");
    cancel.invitees = NULL; /* with a count of 1 */
    CHECK_CODE(beckon_cancel_invitation_ex(alice, sent.invitation_id, &cancel, t_on_cancel, NULL),
               BECKON_ERROR_INVALID_ARGUMENT, "config.invitees");
    char invalid_utf8[] = {'o', 'k', (char)0xC3, 0};
    answer.extended_data = invalid_utf8;
    CHECK_CODE(beckon_accept_invitation_ex(bob, sent.invitation_id, &answer, t_on_result, NULL),
               BECKON_ERROR_INVALID_ARGUMENT, "config.extended_data");
    CHECK_CODE(beckon_accept_invitation_ex(NULL, sent.invitation_id, NULL, t_on_result, NULL),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_CODE(beckon_refuse_invitation_ex(bob, NULL, NULL, t_on_result, NULL), BECKON_ERROR_INVALID_ARGUMENT,
               "invitation_id");

    REQUIRE_CODE(beckon_client_free(alice), BECKON_OK, NULL);
    REQUIRE_CODE(beckon_client_free(bob), BECKON_OK, NULL);
    REQUIRE_CODE(beckon_client_free(carol), BECKON_OK, NULL);
    t_recorder_destroy(&alice_events);
    t_recorder_destroy(&bob_events);
    t_recorder_destroy(&carol_events);
}

/* ---- mutual free -------------------------------------------------------------- */

typedef struct {
    const char *name;
    beckon_client *self;
    beckon_client *other;
    pthread_barrier_t *both_inside;
    atomic_int result; /* -1 until the free returned */
} freer;

/* A send callback that waits until the other client's callback runs too, then
 * frees the other client. */
static void free_the_other(void *user_data, const beckon_send_result *r) {
    (void)r;
    freer *f = user_data;
    pthread_barrier_wait(f->both_inside);
    atomic_store(&f->result, beckon_client_free(f->other));
    t_changed();
}

static int both_returned(void *arg) {
    freer *pair = arg;
    return atomic_load(&pair[0].result) >= 0 && atomic_load(&pair[1].result) >= 0;
}

static void mutual_free(void) {
    T_SECTION("two clients freeing each other from their callbacks: one WOULD_DEADLOCK, no hang");
    int rounds = t_loops(20, 3);
    int deadlocks = 0;
    for (int round = 0; round < rounds; round++) {
        pthread_barrier_t both_inside;
        pthread_barrier_init(&both_inside, NULL, 2);
        freer pair[2] = {{.name = "a", .both_inside = &both_inside}, {.name = "b", .both_inside = &both_inside}};
        atomic_init(&pair[0].result, -1);
        atomic_init(&pair[1].result, -1);
        pair[0].self = t_client_new(HUB, NULL, BECKON_DISPATCH_THREAD);
        pair[1].self = t_client_new(HUB, NULL, BECKON_DISPATCH_THREAD);
        pair[0].other = pair[1].self;
        pair[1].other = pair[0].self;
        /* Not logged in: each send fails at once... so log in, and send to
         * nobody online: the callback comes from each client's dispatcher. */
        t_login(pair[0].self, t_user("mutual-a"), NULL, NULL);
        t_login(pair[1].self, t_user("mutual-b"), NULL, NULL);
        const char *nobody[] = {t_user("mutual-nobody")};
        beckon_invitation_config ic = t_invitation(30, NULL);
        REQUIRE_CODE(beckon_send_invitation(pair[0].self, nobody, 1, &ic, free_the_other, &pair[0]), BECKON_OK, NULL);
        REQUIRE_CODE(beckon_send_invitation(pair[1].self, nobody, 1, &ic, free_the_other, &pair[1]), BECKON_OK, NULL);
        if (!t_wait_until(both_returned, pair, t_timeout_ms())) {
            T_FAIL("round %d: the two frees hung (a: %d, b: %d)", round, atomic_load(&pair[0].result),
                   atomic_load(&pair[1].result));
            t_abort();
        }
        int a = atomic_load(&pair[0].result), b = atomic_load(&pair[1].result);
        CHECK_MSG((a == BECKON_OK && b == BECKON_ERROR_WOULD_DEADLOCK) ||
                      (a == BECKON_ERROR_WOULD_DEADLOCK && b == BECKON_OK),
                  "round %d: want one OK and one WOULD_DEADLOCK, got %s and %s", round, beckon_error_name(a),
                  beckon_error_name(b));
        /* The client whose free was refused is still live: free it now. */
        beckon_client *survivor = a == BECKON_OK ? pair[0].self : pair[1].self;
        beckon_client_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        CHECK_CODE(beckon_client_get_info(survivor, &info), BECKON_OK, NULL);
        CHECK_CODE(beckon_client_free(survivor), BECKON_OK, NULL);
        deadlocks += (a == BECKON_ERROR_WOULD_DEADLOCK) + (b == BECKON_ERROR_WOULD_DEADLOCK);
        pthread_barrier_destroy(&both_inside);
    }
    CHECK_INT(deadlocks, rounds);
}

/* ---- log delivery ------------------------------------------------------------- */

typedef struct {
    atomic_long calls;
    atomic_int running;
    atomic_int retired; /* set by the test once the handler was replaced */
    atomic_long late;   /* calls that started after it was replaced */
    atomic_long api_calls_ok;
    int call_api;
} log_sink;

static void on_log(void *user_data, int32_t level, const char *tag, const char *sub_tag, const char *message) {
    log_sink *sink = user_data;
    atomic_fetch_add(&sink->running, 1);
    if (atomic_load(&sink->retired)) atomic_fetch_add(&sink->late, 1);
    atomic_fetch_add(&sink->calls, 1);
    if (level < BECKON_LOG_ERROR || level > BECKON_LOG_TRACE || tag == NULL || sub_tag == NULL || message == NULL)
        T_FAIL("a malformed log record (level %d)", level);
    if (sink->call_api) {
        /* Queued delivery runs outside the library's locks: the API may be called. */
        beckon_client *client = NULL;
        beckon_client_config config;
        memset(&config, 0, sizeof config);
        config.struct_size = sizeof config;
        config.server_url = "memory://c-controls-log";
        config.dispatch_mode = BECKON_DISPATCH_POLL;
        if (beckon_client_new(&config, &client) == BECKON_OK && beckon_client_free(client) == BECKON_OK)
            atomic_fetch_add(&sink->api_calls_ok, 1);
    }
    atomic_fetch_sub(&sink->running, 1);
}

static beckon_error set_log(log_sink *sink, uint32_t delivery, int32_t level) {
    beckon_log_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.max_level = level;
    config.delivery = delivery;
    config.handler = sink != NULL ? on_log : NULL;
    config.user_data = sink;
    return beckon_set_log_config(&config);
}

static atomic_int keep_logging;

/* Makes log records: every call below logs at INFO or DEBUG. */
static void *logger(void *arg) {
    (void)arg;
    while (atomic_load(&keep_logging)) {
        beckon_client_config config;
        memset(&config, 0, sizeof config);
        config.struct_size = sizeof config;
        config.server_url = "memory://c-controls-logger";
        config.dispatch_mode = BECKON_DISPATCH_POLL;
        beckon_client *client = NULL;
        if (beckon_client_new(&config, &client) == BECKON_OK) beckon_client_free(client);
    }
    return NULL;
}

static void log_replacement(uint32_t delivery, const char *name) {
    T_SECTION("%s log handler: replaced while threads log, the old one is never called after", name);
    atomic_store(&keep_logging, 1);
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&threads[i], NULL, logger, NULL) == 0);
    int rounds = t_loops(50, 5);
    for (int round = 0; round < rounds; round++) {
        log_sink *sink = calloc(1, sizeof *sink);
        REQUIRE(sink != NULL);
        REQUIRE_CODE(set_log(sink, delivery, BECKON_LOG_DEBUG), BECKON_OK, NULL);
        t_sleep_ms(2);
        /* Replace it: once this returns, `sink` is never called again. */
        REQUIRE_CODE(set_log(NULL, delivery, BECKON_LOG_OFF), BECKON_OK, NULL);
        atomic_store(&sink->retired, 1);
        CHECK_INT(atomic_load(&sink->running), 0);
        t_sleep_ms(2);
        CHECK_INT(atomic_load(&sink->late), 0);
        free(sink); /* under ASan, a late call would be a use after free */
    }
    atomic_store(&keep_logging, 0);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
}

static void queued_handler_calls_the_api(void) {
    T_SECTION("a queued log handler may call the API");
    log_sink sink;
    memset(&sink, 0, sizeof sink);
    sink.call_api = 1;
    /* INFO: the handler's own calls log too, at INFO; they are queued behind. */
    REQUIRE_CODE(set_log(&sink, BECKON_LOG_QUEUED, BECKON_LOG_INFO), BECKON_OK, NULL);
    beckon_client *client = t_client_new(HUB, NULL, BECKON_DISPATCH_POLL);
    CHECK_CODE(beckon_client_free(client), BECKON_OK, NULL);
    long deadline = t_now_ms() + t_timeout_ms();
    while (atomic_load(&sink.api_calls_ok) < 2 && t_now_ms() < deadline) t_sleep_ms(5);
    /* Stop the feedback loop, then check what it did. */
    REQUIRE_CODE(set_log(NULL, BECKON_LOG_QUEUED, BECKON_LOG_OFF), BECKON_OK, NULL);
    CHECK_MSG(atomic_load(&sink.api_calls_ok) >= 2, "the handler's API calls: %ld", atomic_load(&sink.api_calls_ok));
}

int main(void) {
    t_start("test_controls");
    operation_configs();
    mutual_free();
    queued_handler_calls_the_api();
    log_replacement(BECKON_LOG_DIRECT, "direct");
    log_replacement(BECKON_LOG_QUEUED, "queued");
    return t_finish();
}

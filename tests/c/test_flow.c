/*
 * test_flow: every operation and event, with the exact events each client gets.
 *
 *  1. the demo flow: alice invites bob, carol, dave (offline); bob accepts,
 *     carol refuses (both from their event handlers), dave times out;
 *  2. cancel of all invitees; 3. cancel of a subset, with error_invitees
 *     carrying terminal states; 4. online_only (the offline invitee is closed);
 *  5. an offline invitee logging in before the deadline receives the invitation;
 *  6. two devices of one user: the first answer wins, the other device is told;
 *  7. kicked out (same device id logging in on a second client);
 *  8. logout events, and rule 7 (the inviter's logout cancels its invitations);
 *  9. the log handler (tag "signaling", levels within max_level), versions;
 * 10. every input is copied before the call returns; 11. TOKEN_WILL_EXPIRE.
 *
 * With BECKON_TEST_SERVER_URL set, the same flow runs against that beckon-server
 * (users suffixed per run); the hub's own log lines and the memory hub with a
 * secret (11) are memory:// only and are reported as SKIP.
 */
#include "common.h"

#define HUB "memory://c-flow"

/* User ids: as written on memory://, with this run's suffix on a server. */
#define ALICE t_user("alice")
#define BOB t_user("bob")
#define CAROL t_user("carol")
#define DAVE t_user("dave")
#define ERIN t_user("erin")
#define FRANK t_user("frank")
#define GINA t_user("gina")
#define IVY t_user("ivy")
#define HENRY t_user("henry")
#define TINA t_user("tina")

/* ---- log handler ------------------------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static long log_lines, log_bad_tag, log_bad_level, log_bad_sub_tag, log_null;
static long log_per_level[6];
static int log_max_level = 0;
static char log_last_api_warning[512];

static void on_log(void *user_data, int32_t level, const char *tag, const char *sub_tag,
                   const char *message) {
    long *marker = user_data;
    pthread_mutex_lock(&log_lock);
    log_lines++;
    (*marker)++;
    if (tag == NULL || sub_tag == NULL || message == NULL) {
        log_null++;
    } else {
        if (strcmp(tag, "signaling") != 0) log_bad_tag++;
        if (strcmp(sub_tag, "api") != 0 && strcmp(sub_tag, "room") != 0 && strcmp(sub_tag, "client") != 0 &&
            strcmp(sub_tag, "hub") != 0)
            log_bad_sub_tag++;
        if (level == BECKON_LOG_WARN && strcmp(sub_tag, "api") == 0)
            snprintf(log_last_api_warning, sizeof log_last_api_warning, "%s", message);
    }
    if (level < BECKON_LOG_ERROR || level > log_max_level) log_bad_level++;
    if (level >= 0 && level <= 5) log_per_level[level]++;
    pthread_mutex_unlock(&log_lock);
}

static long log_marker;

static long log_get(long *what) {
    pthread_mutex_lock(&log_lock);
    long v = *what;
    pthread_mutex_unlock(&log_lock);
    return v;
}

/* ---- answering from the event handler -------------------------------------------- */

#define MAX_HOOK_OPS 64
static t_op hook_ops[MAX_HOOK_OPS];
static atomic_int hook_op_count;

/* Accepts (answer 1) or refuses (answer 2) every INVITATION_RECEIVED, on the dispatcher. */
static void answer_hook(t_recorder *rec, const beckon_event *e) {
    if (e->kind != BECKON_EVENT_INVITATION_RECEIVED || rec->answer == 0) return;
    int i = atomic_fetch_add(&hook_op_count, 1);
    if (i >= MAX_HOOK_OPS) {
        T_FAIL("too many answers from handlers");
        return;
    }
    t_op *op = &hook_ops[i];
    t_op_init(op, rec->answer == 1 ? "accept from the handler" : "refuse from the handler", rec);
    beckon_error rc = rec->answer == 1
                          ? beckon_accept_invitation(rec->client, e->invitation_id, rec->answer_data, t_on_result, op)
                          : beckon_refuse_invitation(rec->client, e->invitation_id, rec->answer_data, t_on_result, op);
    if (rc != BECKON_OK) {
        t_op_no_callback(op, rc);
        T_FAIL("%s: answer from the handler returned %s: %s", rec->name, beckon_error_name(rc),
               beckon_last_error_message());
    }
}

/* ---- expected events ------------------------------------------------------------ */

typedef struct {
    int32_t kind;
    const char *user_id; /* NULL: not checked */
    int32_t state;       /* -1: not checked */
    const char *data;    /* NULL: not checked */
} expect;

#define USC BECKON_EVENT_INVITATION_USER_STATE_CHANGED

/* The events `rec` got for invitation `id` are exactly `want` (as a multiset). */
static void check_exact(t_recorder *rec, const char *id, const expect *want, size_t n_want) {
    pthread_mutex_lock(&rec->mutex);
    size_t n = rec->count;
    pthread_mutex_unlock(&rec->mutex);
    int used[64] = {0};
    size_t matched = 0, have = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rec->events[i].invitation_id, id) == 0) have++;
    for (size_t w = 0; w < n_want; w++) {
        int found = 0;
        size_t k = 0;
        for (size_t i = 0; i < n && !found; i++) {
            const t_event *e = &rec->events[i];
            if (strcmp(e->invitation_id, id) != 0) continue;
            size_t slot = k++;
            if (slot >= 64 || used[slot]) continue;
            if (e->kind != want[w].kind) continue;
            if (want[w].user_id && strcmp(e->user_id, want[w].user_id) != 0) continue;
            if (want[w].state != -1 && e->state != want[w].state) continue;
            if (want[w].data && strcmp(e->extended_data, want[w].data) != 0) continue;
            used[slot] = 1;
            found = 1;
        }
        atomic_fetch_add(&t_checks, 1);
        if (found)
            matched++;
        else
            T_FAIL("%s: missing event %s user=%s state=%s data=%s for %s", rec->name,
                   beckon_event_kind_name(want[w].kind), want[w].user_id ? want[w].user_id : "*",
                   want[w].state == -1 ? "*" : beckon_invitee_state_name(want[w].state),
                   want[w].data ? want[w].data : "*", id);
    }
    atomic_fetch_add(&t_checks, 1);
    if (have != n_want || matched != n_want) {
        T_FAIL("%s: %zu events for %s, expected exactly %zu (matched %zu)", rec->name, have, id, n_want,
               matched);
        t_dump_events(rec);
    } else {
        t_log("  %s: exactly the %zu expected events for this invitation", rec->name, n_want);
    }
}

static long seq_of(t_recorder *rec, int32_t kind, const char *id, const char *user, int32_t state) {
    const t_event *e = t_find_event(rec, kind, id, user, state);
    return e ? e->seq : -1;
}

/* `a` came before `b` among `rec`'s events. */
#define CHECK_BEFORE(rec, ka, ua, sa, kb, ub, sb, id)                                              \
    do {                                                                                           \
        long t_sa_ = seq_of((rec), (ka), (id), (ua), (sa)), t_sb_ = seq_of((rec), (kb), (id), (ub), (sb)); \
        CHECK_MSG(t_sa_ > 0 && t_sb_ > 0 && t_sa_ < t_sb_,                                         \
                  "%s: expected %s(%s) #%ld before %s(%s) #%ld", (rec)->name,                      \
                  beckon_event_kind_name(ka), (ua) ? (ua) : "", t_sa_, beckon_event_kind_name(kb), \
                  (ub) ? (ub) : "", t_sb_);                                                        \
    } while (0)

/* An event carries "" strings, NULL invitees and NULL notification where unused. */
static void check_unused_fields(t_recorder *rec, const t_event *e, int inviter_used, int user_used,
                                int invitees_used) {
    if (!inviter_used) CHECK_MSG(e->inviter[0] == '\0', "%s: %s inviter \"%s\" (want \"\")", rec->name,
                                 beckon_event_kind_name(e->kind), e->inviter);
    if (!user_used) CHECK_MSG(e->user_id[0] == '\0', "%s: %s user_id \"%s\" (want \"\")", rec->name,
                              beckon_event_kind_name(e->kind), e->user_id);
    if (!invitees_used) {
        CHECK_MSG(e->invitee_count == 0 && e->invitees_was_null, "%s: %s has %zu invitees (want none, NULL)",
                  rec->name, beckon_event_kind_name(e->kind), e->invitee_count);
    }
    if (e->kind != BECKON_EVENT_INVITATION_RECEIVED)
        CHECK_MSG(!e->has_notification, "%s: %s carries a notification", rec->name,
                  beckon_event_kind_name(e->kind));
}

/* Every callback queued so far on `client` has run: one more operation, waited for. */
static void flush(beckon_client *client, t_recorder *rec) {
    t_op op;
    t_op_init(&op, "flush", rec);
    beckon_error rc = beckon_accept_invitation(client, "ffffffffffffffffffffffffffffffff", NULL, t_on_result, &op);
    if (rc == BECKON_ERROR_NOT_LOGGED_IN) {
        /* a logged-out client has no operation to flush with: give the dispatcher time */
        t_sleep_ms(t_slow() ? 1000 : 200);
        return;
    }
    REQUIRE_INT(rc, BECKON_OK);
    WAIT_OP(&op);
    CHECK_INT(op.error, BECKON_ERROR_INVITATION_NOT_FOUND);
}

static t_recorder alice, bob, carol, erin, frank, gina, ivy1, ivy2, henry1, henry2;

static beckon_client *user(t_recorder *rec, const char *name, const char *device) {
    beckon_client *c = t_client_with_recorder(t_url(HUB), device, rec);
    rec->hook = answer_hook;
    t_op op;
    t_op_init(&op, "login", rec);
    REQUIRE_CODE(beckon_client_login(c, name, NULL, t_on_result, &op), BECKON_OK, NULL);
    WAIT_OP(&op);
    REQUIRE_INT(op.error, BECKON_OK);
    /* CONNECTING then CONNECTED (reason LOGIN), both before the login callback */
    const t_event *connecting = t_find_event(rec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1);
    REQUIRE(connecting != NULL);
    CHECK_INT(connecting->connection_state, BECKON_CONNECTION_CONNECTING);
    CHECK_INT(connecting->connection_reason, BECKON_REASON_LOGIN);
    CHECK_INT(t_count_events(rec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1), 2);
    pthread_mutex_lock(&rec->mutex);
    const t_event *connected = rec->count >= 2 ? &rec->events[1] : NULL;
    pthread_mutex_unlock(&rec->mutex);
    REQUIRE(connected != NULL);
    CHECK_INT(connected->kind, BECKON_EVENT_CONNECTION_STATE_CHANGED);
    CHECK_INT(connected->connection_state, BECKON_CONNECTION_CONNECTED);
    CHECK_INT(connected->connection_reason, BECKON_REASON_LOGIN);
    CHECK_MSG(connected->seq < op.seq, "%s: CONNECTED (#%ld) after the login callback (#%ld)", rec->name,
              connected->seq, op.seq);
    check_unused_fields(rec, connected, 0, 0, 0);
    CHECK_STR(connected->invitation_id, "");
    return c;
}

static void send_op(beckon_client *c, t_op *op, const char *const *who, size_t n, uint32_t timeout,
                    const char *data, const beckon_notification_config *note, uint32_t flags) {
    beckon_invitation_config cfg = t_invitation(timeout, data);
    cfg.notification = note;
    cfg.flags = flags;
    REQUIRE_CODE(beckon_send_invitation(c, who, n, &cfg, t_on_send, op), BECKON_OK, NULL);
    WAIT_OP(op);
    if (op->error != BECKON_OK) {
        T_FAIL("send: %s: %s", beckon_error_name(op->error), op->message);
        t_abort();
    }
}

/* The inviter got the send result before any event of that invitation
 * (docs/SEMANTICS.md order: events and results reach a client in the order it observed them). */
static void check_result_first(t_recorder *rec, t_op *sent) {
    const t_event *first = t_find_event(rec, 0, sent->invitation_id, NULL, -1);
    if (first == NULL) return;
    CHECK_MSG(sent->seq < first->seq,
              "%s: the event %s(%s %s) of invitation %s (#%ld) ran before the send callback that "
              "returned its id (#%ld)",
              rec->name, beckon_event_kind_name(first->kind), first->user_id,
              beckon_invitee_state_name(first->state), sent->invitation_id, first->seq, sent->seq);
}

int main(void) {
    t_start("test_flow");

    T_SECTION("versions");
    CHECK_STR(beckon_version(), BECKON_VERSION);
    CHECK_INT(beckon_abi_version(), BECKON_ABI_VERSION);
    {
        char v[32];
        snprintf(v, sizeof v, "%d.%d.%d", BECKON_VERSION_MAJOR, BECKON_VERSION_MINOR, BECKON_VERSION_PATCH);
        CHECK_STR(beckon_version(), v);
    }

    T_SECTION("log handler at INFO");
    log_max_level = BECKON_LOG_INFO;
    REQUIRE_CODE(beckon_set_log_handler(on_log, &log_marker, BECKON_LOG_INFO), BECKON_OK, NULL);
    /* an API error is logged at WARN under "api" */
    CHECK_CODE(beckon_client_login(NULL, "x", NULL, NULL, NULL), BECKON_ERROR_INVALID_ARGUMENT, "client");

    const size_t cap = 512;
    const char *recorder_names[] = {ALICE, BOB, CAROL, ERIN, FRANK, GINA, "ivy#1", "ivy#2",
                                    "henry#1", "henry#2"};
    t_recorder *recs[] = {&alice, &bob, &carol, &erin, &frank, &gina, &ivy1, &ivy2, &henry1, &henry2};
    for (int i = 0; i < 10; i++) t_recorder_init(recs[i], recorder_names[i], cap);

    T_SECTION("1. demo flow: alice invites bob, carol, dave (offline); bob accepts, carol refuses, dave times out");
    beckon_client *a = user(&alice, ALICE, "alice-desk");
    beckon_client *b = user(&bob, BOB, NULL);
    beckon_client *c = user(&carol, CAROL, NULL);
    bob.answer = 1;
    bob.answer_data = "bob-yes";
    carol.answer = 2;
    carol.answer_data = "carol-no";
    /* Short, so that the test does not wait long; over the network bob's and
     * carol's answers make a round trip through the server (and under valgrind
     * through an instrumented client) before dave's deadline. */
    const uint32_t timeout = t_on_server() ? (t_slow() ? 8 : 3) : (t_slow() ? 3 : 1);
    const char *bcd[] = {BOB, CAROL, DAVE};
    beckon_notification_config note;
    memset(&note, 0, sizeof note);
    note.struct_size = sizeof note;
    note.title = "Incoming call";
    note.message = "alice is calling you";
    note.resource_id = "ring-1";
    note.payload = "{\"room\":42}";
    const char *data1 = "{\"call\":\"video\"}";
    t_op sent1;
    t_op_init(&sent1, "send #1", &alice);
    long t0 = t_now_ms();
    send_op(a, &sent1, bcd, 3, timeout, data1, &note, 0);
    const char *id1 = sent1.invitation_id;
    t_log("  invitation %s", id1);
    CHECK_STR(sent1.message, "");
    REQUIRE_INT(sent1.invitee_count, 1);
    CHECK_STR(sent1.invitees[0].user_id, DAVE);
    CHECK_INT(sent1.invitees[0].state, BECKON_INVITEE_OFFLINE);
    CHECK(!pthread_equal(sent1.thread, t_main_thread));

    WAIT_EVENTS(&alice, BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT, id1, NULL, -1, 1);
    long elapsed = t_now_ms() - t0;
    t_log("  response timeout after %ld ms (timeout %u s)", elapsed, timeout);
    CHECK_MSG(elapsed >= (long)timeout * 1000 - 50, "timed out after %ld ms, before the %u s deadline", elapsed,
              timeout);
    WAIT_EVENTS(&alice, USC, id1, DAVE, BECKON_INVITEE_TIMEOUT, 1);
    WAIT_EVENTS(&bob, USC, id1, DAVE, BECKON_INVITEE_TIMEOUT, 1);
    WAIT_EVENTS(&carol, USC, id1, DAVE, BECKON_INVITEE_TIMEOUT, 1);

    /* what bob and carol received */
    t_recorder *invited[] = {&bob, &carol};
    for (int i = 0; i < 2; i++) {
        const t_event *r = t_find_event(invited[i], BECKON_EVENT_INVITATION_RECEIVED, id1, NULL, -1);
        REQUIRE(r != NULL);
        CHECK_STR(r->inviter, ALICE);
        CHECK_STR(r->user_id, "");
        CHECK_STR(r->extended_data, data1);
        CHECK_MSG(r->seconds_left >= (timeout > 1 ? timeout - 1 : 1) && r->seconds_left <= timeout,
                  "%s: seconds_left %u for a %u s invitation", invited[i]->name, r->seconds_left, timeout);
        REQUIRE_INT(r->invitee_count, 3);
        CHECK_STR(r->invitees[0].user_id, BOB);
        CHECK_STR(r->invitees[1].user_id, CAROL);
        CHECK_STR(r->invitees[2].user_id, DAVE);
        CHECK_INT(r->invitees[0].state, BECKON_INVITEE_INVITING);
        CHECK_INT(r->invitees[1].state, BECKON_INVITEE_INVITING);
        CHECK_INT(r->invitees[2].state, BECKON_INVITEE_OFFLINE);
        CHECK_MSG(r->has_notification, "%s: INVITATION_RECEIVED without the notification", invited[i]->name);
        if (r->has_notification) {
            CHECK_INT(r->notification_struct_size, sizeof(beckon_notification_config));
            CHECK_STR(r->n_title, "Incoming call");
            CHECK_STR(r->n_message, "alice is calling you");
            CHECK_STR(r->n_resource_id, "ring-1");
            CHECK_STR(r->n_payload, "{\"room\":42}");
        }
        CHECK_INT(r->connection_state, 0);
        CHECK_INT(r->connection_reason, 0);
    }
    /* the answers' callbacks */
    for (int i = 0; i < atomic_load(&hook_op_count); i++) {
        WAIT_OP(&hook_ops[i]);
        CHECK_MSG(hook_ops[i].error == BECKON_OK, "%s: %s", hook_ops[i].what, beckon_error_name(hook_ops[i].error));
    }
    CHECK_INT(atomic_load(&hook_op_count), 2);

    const expect alice1[] = {
        {USC, BOB, BECKON_INVITEE_RECEIVED, ""},
        {USC, CAROL, BECKON_INVITEE_RECEIVED, ""},
        {BECKON_EVENT_INVITATION_ACCEPTED, BOB, 0, "bob-yes"},
        {USC, BOB, BECKON_INVITEE_ACCEPTED, "bob-yes"},
        {BECKON_EVENT_INVITATION_REFUSED, CAROL, 0, "carol-no"},
        {USC, CAROL, BECKON_INVITEE_REJECTED, "carol-no"},
        {BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT, "", 0, ""},
        {USC, DAVE, BECKON_INVITEE_TIMEOUT, ""},
    };
    check_exact(&alice, id1, alice1, sizeof alice1 / sizeof alice1[0]);
    const expect invitee1[] = {
        {BECKON_EVENT_INVITATION_RECEIVED, "", 0, data1},
        {USC, BOB, BECKON_INVITEE_RECEIVED, ""},
        {USC, CAROL, BECKON_INVITEE_RECEIVED, ""},
        {USC, BOB, BECKON_INVITEE_ACCEPTED, "bob-yes"},
        {USC, CAROL, BECKON_INVITEE_REJECTED, "carol-no"},
        {USC, DAVE, BECKON_INVITEE_TIMEOUT, ""},
    };
    check_exact(&bob, id1, invitee1, 6);
    check_exact(&carol, id1, invitee1, 6);

    const t_event *rt = t_find_event(&alice, BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT, id1, NULL, -1);
    REQUIRE(rt != NULL);
    REQUIRE_INT(rt->invitee_count, 1);
    CHECK_STR(rt->invitees[0].user_id, DAVE);
    CHECK_INT(rt->invitees[0].state, BECKON_INVITEE_TIMEOUT);
    check_unused_fields(&alice, rt, 0, 0, 1);
    const t_event *acc = t_find_event(&alice, BECKON_EVENT_INVITATION_ACCEPTED, id1, NULL, -1);
    REQUIRE(acc != NULL);
    check_unused_fields(&alice, acc, 0, 1, 0);
    const t_event *ref = t_find_event(&alice, BECKON_EVENT_INVITATION_REFUSED, id1, NULL, -1);
    REQUIRE(ref != NULL);
    check_unused_fields(&alice, ref, 0, 1, 0);
    const t_event *usc = t_find_event(&alice, USC, id1, BOB, BECKON_INVITEE_ACCEPTED);
    REQUIRE(usc != NULL);
    check_unused_fields(&alice, usc, 0, 1, 0);

    /* order, per client */
    CHECK_BEFORE(&alice, USC, BOB, BECKON_INVITEE_RECEIVED, BECKON_EVENT_INVITATION_ACCEPTED, BOB, -1, id1);
    CHECK_BEFORE(&alice, BECKON_EVENT_INVITATION_ACCEPTED, BOB, -1, USC, BOB, BECKON_INVITEE_ACCEPTED, id1);
    CHECK_BEFORE(&alice, USC, CAROL, BECKON_INVITEE_RECEIVED, BECKON_EVENT_INVITATION_REFUSED, CAROL, -1, id1);
    CHECK_BEFORE(&alice, BECKON_EVENT_INVITATION_REFUSED, CAROL, -1, USC, CAROL, BECKON_INVITEE_REJECTED, id1);
    CHECK_BEFORE(&alice, USC, BOB, BECKON_INVITEE_ACCEPTED, BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT, NULL, -1, id1);
    CHECK_BEFORE(&alice, USC, CAROL, BECKON_INVITEE_REJECTED, BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT, NULL, -1,
                 id1);
    CHECK_BEFORE(&alice, BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT, NULL, -1, USC, DAVE, BECKON_INVITEE_TIMEOUT, id1);
    for (int i = 0; i < 2; i++) {
        CHECK_BEFORE(invited[i], BECKON_EVENT_INVITATION_RECEIVED, NULL, -1, USC, BOB, BECKON_INVITEE_RECEIVED, id1);
        CHECK_BEFORE(invited[i], BECKON_EVENT_INVITATION_RECEIVED, NULL, -1, USC, CAROL, BECKON_INVITEE_RECEIVED,
                     id1);
        CHECK_BEFORE(invited[i], USC, BOB, BECKON_INVITEE_ACCEPTED, USC, DAVE, BECKON_INVITEE_TIMEOUT, id1);
    }
    check_result_first(&alice, &sent1);

    /* dave logs in after the deadline: nothing rings */
    {
        t_recorder dave;
        t_recorder_init(&dave, DAVE, 64);
        beckon_client *d = user(&dave, DAVE, NULL);
        flush(d, &dave);
        CHECK_INT(t_count_events(&dave, BECKON_EVENT_INVITATION_RECEIVED, NULL, NULL, -1), 0);
        t_op late;
        t_op_init(&late, "dave accepts after the deadline", &dave);
        CHECK_CODE(beckon_accept_invitation(d, id1, NULL, t_on_result, &late), BECKON_OK, NULL);
        CHECK_OP(&late, BECKON_ERROR_INVITATION_CLOSED, NULL);
        beckon_client_free(d);
        t_recorder_destroy(&dave);
    }
    t_op late_bob;
    t_op_init(&late_bob, "bob accepts again", &bob);
    CHECK_CODE(beckon_accept_invitation(b, id1, NULL, t_on_result, &late_bob), BECKON_OK, NULL);
    CHECK_OP(&late_bob, BECKON_ERROR_ALREADY_ANSWERED, NULL);

    T_SECTION("2. cancel of all invitees");
    bob.answer = 0;
    carol.answer = 0;
    const char *bc[] = {BOB, CAROL};
    t_op sent2;
    t_op_init(&sent2, "send #2", &alice);
    send_op(a, &sent2, bc, 2, 30, "second", NULL, 0);
    const char *id2 = sent2.invitation_id;
    CHECK_INT(sent2.invitee_count, 0);
    WAIT_EVENTS(&alice, USC, id2, BOB, BECKON_INVITEE_RECEIVED, 1);
    WAIT_EVENTS(&alice, USC, id2, CAROL, BECKON_INVITEE_RECEIVED, 1);
    WAIT_EVENTS(&bob, BECKON_EVENT_INVITATION_RECEIVED, id2, NULL, -1, 1);
    WAIT_EVENTS(&carol, BECKON_EVENT_INVITATION_RECEIVED, id2, NULL, -1, 1);
    {
        const t_event *r = t_find_event(&bob, BECKON_EVENT_INVITATION_RECEIVED, id2, NULL, -1);
        REQUIRE(r != NULL);
        CHECK(!r->has_notification);
        CHECK_STR(r->extended_data, "second");
        CHECK(r->seconds_left >= 29 && r->seconds_left <= 30);
    }
    t_op cancel2;
    t_op_init(&cancel2, "cancel #2 (all)", &alice);
    CHECK_CODE(beckon_cancel_invitation(a, id2, NULL, 0, "never mind", t_on_cancel, &cancel2), BECKON_OK, NULL);
    CHECK_OP(&cancel2, BECKON_OK, NULL);
    CHECK_INT(cancel2.invitee_count, 0);
    WAIT_EVENTS(&alice, USC, id2, CAROL, BECKON_INVITEE_CANCELLED, 1);
    WAIT_EVENTS(&bob, USC, id2, CAROL, BECKON_INVITEE_CANCELLED, 1);
    WAIT_EVENTS(&carol, USC, id2, CAROL, BECKON_INVITEE_CANCELLED, 1);
    const expect alice2[] = {
        {USC, BOB, BECKON_INVITEE_RECEIVED, ""},
        {USC, CAROL, BECKON_INVITEE_RECEIVED, ""},
        {USC, BOB, BECKON_INVITEE_CANCELLED, "never mind"},
        {USC, CAROL, BECKON_INVITEE_CANCELLED, "never mind"},
    };
    check_exact(&alice, id2, alice2, 4);
    const expect invitee2[] = {
        {BECKON_EVENT_INVITATION_RECEIVED, "", 0, "second"},
        {USC, BOB, BECKON_INVITEE_RECEIVED, ""},
        {USC, CAROL, BECKON_INVITEE_RECEIVED, ""},
        {BECKON_EVENT_INVITATION_CANCELLED, "", 0, "never mind"},
        {USC, BOB, BECKON_INVITEE_CANCELLED, "never mind"},
        {USC, CAROL, BECKON_INVITEE_CANCELLED, "never mind"},
    };
    check_exact(&bob, id2, invitee2, 6);
    check_exact(&carol, id2, invitee2, 6);
    {
        const t_event *e = t_find_event(&bob, BECKON_EVENT_INVITATION_CANCELLED, id2, NULL, -1);
        REQUIRE(e != NULL);
        CHECK_STR(e->inviter, ALICE);
        check_unused_fields(&bob, e, 1, 0, 0);
    }
    check_result_first(&alice, &sent2);
    t_op closed2;
    t_op_init(&closed2, "bob accepts a cancelled invitation", &bob);
    CHECK_CODE(beckon_accept_invitation(b, id2, NULL, t_on_result, &closed2), BECKON_OK, NULL);
    CHECK_OP(&closed2, BECKON_ERROR_INVITATION_CLOSED, NULL);

    T_SECTION("3. cancel of a subset: terminal invitees come back in error_invitees");
    beckon_client *e = user(&erin, ERIN, NULL);
    const char *bce[] = {BOB, CAROL, ERIN};
    t_op sent3;
    t_op_init(&sent3, "send #3", &alice);
    send_op(a, &sent3, bce, 3, 30, "third", NULL, 0);
    const char *id3 = sent3.invitation_id;
    WAIT_EVENTS(&alice, USC, id3, BOB, BECKON_INVITEE_RECEIVED, 1);
    WAIT_EVENTS(&alice, USC, id3, CAROL, BECKON_INVITEE_RECEIVED, 1);
    WAIT_EVENTS(&alice, USC, id3, ERIN, BECKON_INVITEE_RECEIVED, 1);
    t_op acc3, ref3;
    t_op_init(&acc3, "bob accepts #3", &bob);
    t_op_init(&ref3, "carol refuses #3", &carol);
    CHECK_CODE(beckon_accept_invitation(b, id3, NULL, t_on_result, &acc3), BECKON_OK, NULL);
    CHECK_CODE(beckon_refuse_invitation(c, id3, "no", t_on_result, &ref3), BECKON_OK, NULL);
    CHECK_OP(&acc3, BECKON_OK, NULL);
    CHECK_OP(&ref3, BECKON_OK, NULL);
    WAIT_EVENTS(&alice, USC, id3, CAROL, BECKON_INVITEE_REJECTED, 1);
    const char *bc_dup[] = {BOB, CAROL, BOB};
    t_op cancel3a;
    t_op_init(&cancel3a, "cancel #3 for bob and carol (both answered)", &alice);
    CHECK_CODE(beckon_cancel_invitation(a, id3, bc_dup, 3, NULL, t_on_cancel, &cancel3a), BECKON_OK, NULL);
    CHECK_OP(&cancel3a, BECKON_OK, NULL);
    CHECK_INT(cancel3a.invitee_count, 2);
    CHECK_INT(t_invitee_state(cancel3a.invitees, cancel3a.invitee_count, BOB), BECKON_INVITEE_ACCEPTED);
    CHECK_INT(t_invitee_state(cancel3a.invitees, cancel3a.invitee_count, CAROL), BECKON_INVITEE_REJECTED);
    flush(e, &erin);
    CHECK_INT(t_count_events(&erin, BECKON_EVENT_INVITATION_CANCELLED, id3, NULL, -1), 0);
    const char *eb[] = {ERIN, BOB};
    t_op cancel3b;
    t_op_init(&cancel3b, "cancel #3 for erin and bob", &alice);
    CHECK_CODE(beckon_cancel_invitation(a, id3, eb, 2, "bye erin", t_on_cancel, &cancel3b), BECKON_OK, NULL);
    CHECK_OP(&cancel3b, BECKON_OK, NULL);
    REQUIRE_INT(cancel3b.invitee_count, 1);
    CHECK_STR(cancel3b.invitees[0].user_id, BOB);
    CHECK_INT(cancel3b.invitees[0].state, BECKON_INVITEE_ACCEPTED);
    WAIT_EVENTS(&erin, BECKON_EVENT_INVITATION_CANCELLED, id3, NULL, -1, 1);
    WAIT_EVENTS(&alice, USC, id3, ERIN, BECKON_INVITEE_CANCELLED, 1);
    CHECK_STR(t_find_event(&erin, BECKON_EVENT_INVITATION_CANCELLED, id3, NULL, -1)->extended_data, "bye erin");
    t_op cancel3c;
    t_op_init(&cancel3c, "cancel #3 once it has ended", &alice);
    CHECK_CODE(beckon_cancel_invitation(a, id3, NULL, 0, NULL, t_on_cancel, &cancel3c), BECKON_OK, NULL);
    CHECK_OP(&cancel3c, BECKON_ERROR_INVITATION_CLOSED, NULL);
    const expect alice3[] = {
        {USC, BOB, BECKON_INVITEE_RECEIVED, ""},
        {USC, CAROL, BECKON_INVITEE_RECEIVED, ""},
        {USC, ERIN, BECKON_INVITEE_RECEIVED, ""},
        {BECKON_EVENT_INVITATION_ACCEPTED, BOB, 0, ""},
        {USC, BOB, BECKON_INVITEE_ACCEPTED, ""},
        {BECKON_EVENT_INVITATION_REFUSED, CAROL, 0, "no"},
        {USC, CAROL, BECKON_INVITEE_REJECTED, "no"},
        {USC, ERIN, BECKON_INVITEE_CANCELLED, "bye erin"},
    };
    check_exact(&alice, id3, alice3, 8);
    check_result_first(&alice, &sent3);

    T_SECTION("3b. an online invitee who does not answer times out: INVITATION_TIMEOUT");
    const expect alice3b_final[] = {
        {USC, ERIN, BECKON_INVITEE_RECEIVED, ""},
        {BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT, "", 0, ""},
        {USC, ERIN, BECKON_INVITEE_TIMEOUT, ""},
    };
    const char *just_erin[] = {ERIN};
    t_op sent3b;
    t_op_init(&sent3b, "send #3b to erin", &alice);
    send_op(a, &sent3b, just_erin, 1, timeout, "ring erin", NULL, 0);
    const char *id3b = sent3b.invitation_id;
    CHECK_INT(sent3b.invitee_count, 0);
    WAIT_EVENTS(&alice, BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT, id3b, NULL, -1, 1);
    WAIT_EVENTS(&alice, USC, id3b, ERIN, BECKON_INVITEE_TIMEOUT, 1);
    WAIT_EVENTS(&erin, USC, id3b, ERIN, BECKON_INVITEE_TIMEOUT, 1);
    {
        const t_event *to = t_find_event(&erin, BECKON_EVENT_INVITATION_TIMEOUT, id3b, NULL, -1);
        CHECK_MSG(to != NULL, "erin: no INVITATION_TIMEOUT");
        if (to != NULL) {
            CHECK_STR(to->inviter, ALICE);
            check_unused_fields(&erin, to, 1, 0, 0);
            CHECK_STR(to->extended_data, "");
        }
        check_exact(&alice, id3b, alice3b_final, 3);
        const expect erin3b[] = {
            {BECKON_EVENT_INVITATION_RECEIVED, "", 0, "ring erin"},
            {USC, ERIN, BECKON_INVITEE_RECEIVED, ""},
            {BECKON_EVENT_INVITATION_TIMEOUT, "", 0, ""},
            {USC, ERIN, BECKON_INVITEE_TIMEOUT, ""},
        };
        check_exact(&erin, id3b, erin3b, 4);
        CHECK_BEFORE(&erin, BECKON_EVENT_INVITATION_TIMEOUT, NULL, -1, USC, ERIN, BECKON_INVITEE_TIMEOUT, id3b);
        const t_event *rt3 = t_find_event(&alice, BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT, id3b, NULL, -1);
        REQUIRE(rt3 != NULL);
        REQUIRE_INT(rt3->invitee_count, 1);
        CHECK_STR(rt3->invitees[0].user_id, ERIN);
        CHECK_INT(rt3->invitees[0].state, BECKON_INVITEE_TIMEOUT);
    }
    t_op late3b;
    t_op_init(&late3b, "erin accepts after timing out", &erin);
    CHECK_CODE(beckon_accept_invitation(e, id3b, NULL, t_on_result, &late3b), BECKON_OK, NULL);
    CHECK_OP(&late3b, BECKON_ERROR_INVITATION_CLOSED, NULL);

    T_SECTION("4. online_only: the offline invitee is closed at once");
    const char *bf[] = {BOB, FRANK};
    t_op sent4;
    t_op_init(&sent4, "send #4 (online only)", &alice);
    send_op(a, &sent4, bf, 2, 30, "fourth", NULL, BECKON_INVITATION_ONLINE_ONLY);
    const char *id4 = sent4.invitation_id;
    REQUIRE_INT(sent4.invitee_count, 1);
    CHECK_STR(sent4.invitees[0].user_id, FRANK);
    CHECK_INT(sent4.invitees[0].state, BECKON_INVITEE_OFFLINE);
    beckon_client *f = user(&frank, FRANK, NULL);
    flush(f, &frank);
    CHECK_INT(t_count_events(&frank, BECKON_EVENT_INVITATION_RECEIVED, id4, NULL, -1), 0);
    t_op frank_acc;
    t_op_init(&frank_acc, "frank accepts an online-only invitation sent while offline", &frank);
    CHECK_CODE(beckon_accept_invitation(f, id4, NULL, t_on_result, &frank_acc), BECKON_OK, NULL);
    CHECK_OP(&frank_acc, BECKON_ERROR_INVITATION_CLOSED, NULL);
    WAIT_EVENTS(&bob, BECKON_EVENT_INVITATION_RECEIVED, id4, NULL, -1, 1);
    t_op acc4;
    t_op_init(&acc4, "bob accepts #4", &bob);
    CHECK_CODE(beckon_accept_invitation(b, id4, NULL, t_on_result, &acc4), BECKON_OK, NULL);
    CHECK_OP(&acc4, BECKON_OK, NULL);
    WAIT_EVENTS(&alice, BECKON_EVENT_INVITATION_ACCEPTED, id4, BOB, -1, 1);
    /* every invitee is final now (frank closed): the invitation ended */
    t_op cancel4;
    t_op_init(&cancel4, "cancel #4 after it ended", &alice);
    CHECK_CODE(beckon_cancel_invitation(a, id4, NULL, 0, NULL, t_on_cancel, &cancel4), BECKON_OK, NULL);
    CHECK_OP(&cancel4, BECKON_ERROR_INVITATION_CLOSED, NULL);
    CHECK_INT(t_count_events(&alice, USC, id4, FRANK, -1), 0);

    T_SECTION("5. an offline invitee logging in before the deadline receives the invitation");
    const char *g1[] = {GINA};
    t_op sent5;
    t_op_init(&sent5, "send #5 to offline gina", &alice);
    send_op(a, &sent5, g1, 1, 30, "fifth", NULL, 0);
    const char *id5 = sent5.invitation_id;
    REQUIRE_INT(sent5.invitee_count, 1);
    CHECK_INT(sent5.invitees[0].state, BECKON_INVITEE_OFFLINE);
    beckon_client *g = t_client_with_recorder(t_url(HUB), NULL, &gina);
    t_op gina_login;
    t_op_init(&gina_login, "gina's login", &gina);
    CHECK_CODE(beckon_client_login(g, GINA, NULL, t_on_result, &gina_login), BECKON_OK, NULL);
    CHECK_OP(&gina_login, BECKON_OK, NULL);
    WAIT_EVENTS(&gina, BECKON_EVENT_INVITATION_RECEIVED, id5, NULL, -1, 1);
    {
        const t_event *r = t_find_event(&gina, BECKON_EVENT_INVITATION_RECEIVED, id5, NULL, -1);
        CHECK_MSG(gina_login.seq < r->seq, "gina: the pending invitation (#%ld) came before the login callback (#%ld)",
                  r->seq, gina_login.seq);
        CHECK_STR(r->inviter, ALICE);
        CHECK_STR(r->extended_data, "fifth");
        REQUIRE_INT(r->invitee_count, 1);
        CHECK_STR(r->invitees[0].user_id, GINA);
        CHECK(r->seconds_left > 0 && r->seconds_left <= 30);
    }
    WAIT_EVENTS(&alice, USC, id5, GINA, BECKON_INVITEE_RECEIVED, 1);
    t_op ref5;
    t_op_init(&ref5, "gina refuses #5", &gina);
    CHECK_CODE(beckon_refuse_invitation(g, id5, "later", t_on_result, &ref5), BECKON_OK, NULL);
    CHECK_OP(&ref5, BECKON_OK, NULL);
    WAIT_EVENTS(&alice, BECKON_EVENT_INVITATION_REFUSED, id5, GINA, -1, 1);
    WAIT_EVENTS(&alice, USC, id5, GINA, BECKON_INVITEE_REJECTED, 1);
    const expect alice5[] = {
        {USC, GINA, BECKON_INVITEE_RECEIVED, ""},
        {BECKON_EVENT_INVITATION_REFUSED, GINA, 0, "later"},
        {USC, GINA, BECKON_INVITEE_REJECTED, "later"},
    };
    check_exact(&alice, id5, alice5, 3);

    T_SECTION("6. two devices of one user: both ring, the first answer wins, the other is told");
    beckon_client *i1 = user(&ivy1, IVY, "ivy-phone");
    beckon_client *i2 = user(&ivy2, IVY, "ivy-laptop");
    const char *ivy[] = {IVY};
    t_op sent6;
    t_op_init(&sent6, "send #6 to ivy", &alice);
    send_op(a, &sent6, ivy, 1, 30, "sixth", NULL, 0);
    const char *id6 = sent6.invitation_id;
    WAIT_EVENTS(&ivy1, BECKON_EVENT_INVITATION_RECEIVED, id6, NULL, -1, 1);
    WAIT_EVENTS(&ivy2, BECKON_EVENT_INVITATION_RECEIVED, id6, NULL, -1, 1);
    t_op acc6, acc6b;
    t_op_init(&acc6, "ivy accepts on the phone", &ivy1);
    CHECK_CODE(beckon_accept_invitation(i1, id6, "from phone", t_on_result, &acc6), BECKON_OK, NULL);
    CHECK_OP(&acc6, BECKON_OK, NULL);
    WAIT_EVENTS(&ivy2, USC, id6, IVY, BECKON_INVITEE_ACCEPTED, 1);
    t_op_init(&acc6b, "ivy accepts again on the laptop", &ivy2);
    CHECK_CODE(beckon_accept_invitation(i2, id6, NULL, t_on_result, &acc6b), BECKON_OK, NULL);
    CHECK_OP(&acc6b, BECKON_ERROR_ALREADY_ANSWERED, NULL);
    WAIT_EVENTS(&alice, BECKON_EVENT_INVITATION_ACCEPTED, id6, IVY, -1, 1);
    flush(i1, &ivy1);
    flush(i2, &ivy2);
    CHECK_INT(t_count_events(&ivy1, BECKON_EVENT_INVITATION_RECEIVED, id6, NULL, -1), 1);
    CHECK_INT(t_count_events(&ivy2, BECKON_EVENT_INVITATION_RECEIVED, id6, NULL, -1), 1);
    CHECK_INT(t_count_events(&alice, BECKON_EVENT_INVITATION_ACCEPTED, id6, NULL, -1), 1);
    /* the inviter hears RECEIVED once per invitee, not per device */
    CHECK_INT(t_count_events(&alice, USC, id6, IVY, BECKON_INVITEE_RECEIVED), 1);

    T_SECTION("6b. rule 9: logging in again on the same client object does not ring again");
    {
        const char *just_carol9[] = {CAROL};
        t_op sent9r;
        t_op_init(&sent9r, "send to carol (rule 9)", &alice);
        send_op(a, &sent9r, just_carol9, 1, 30, "ring once", NULL, 0);
        WAIT_EVENTS(&carol, BECKON_EVENT_INVITATION_RECEIVED, sent9r.invitation_id, NULL, -1, 1);
        t_op out9;
        t_op_init(&out9, "carol logs out", &carol);
        REQUIRE_CODE(beckon_client_logout(c, t_on_result, &out9), BECKON_OK, NULL);
        CHECK_OP(&out9, BECKON_OK, NULL);
        t_login(c, CAROL, NULL, &carol);
        flush(c, &carol);
        CHECK_INT(t_count_events(&carol, BECKON_EVENT_INVITATION_RECEIVED, sent9r.invitation_id, NULL, -1), 1);
        /* a new client object of the same user is a new device: it rings there */
        t_recorder carol2;
        t_recorder_init(&carol2, "carol#2", 64);
        beckon_client *c2 = t_client_with_recorder(t_url(HUB), NULL, &carol2);
        t_login(c2, CAROL, NULL, &carol2);
        WAIT_EVENTS(&carol2, BECKON_EVENT_INVITATION_RECEIVED, sent9r.invitation_id, NULL, -1, 1);
        flush(c2, &carol2);
        CHECK_INT(t_count_events(&carol2, BECKON_EVENT_INVITATION_RECEIVED, sent9r.invitation_id, NULL, -1), 1);
        t_op cancel9r;
        t_op_init(&cancel9r, "cancel (rule 9)", &alice);
        CHECK_CODE(beckon_cancel_invitation(a, sent9r.invitation_id, NULL, 0, NULL, t_on_cancel, &cancel9r), BECKON_OK,
                   NULL);
        CHECK_OP(&cancel9r, BECKON_OK, NULL);
        WAIT_EVENTS(&carol2, BECKON_EVENT_INVITATION_CANCELLED, sent9r.invitation_id, NULL, -1, 1);
        WAIT_EVENTS(&carol, BECKON_EVENT_INVITATION_CANCELLED, sent9r.invitation_id, NULL, -1, 1);
        beckon_client_free(c2);
        t_recorder_destroy(&carol2);
        t_op_reset(&sent9r);
        t_op_reset(&cancel9r);
        t_log("  the same client object rang once across logout/login; a second client object rang too");
    }

    T_SECTION("7. kicked out: the same device id logs in on a second client");
    beckon_client *h1 = user(&henry1, HENRY, "henry-dev");
    beckon_client *h2 = t_client_with_recorder(t_url(HUB), "henry-dev", &henry2);
    t_login(h2, HENRY, NULL, &henry2);
    WAIT_EVENTS(&henry1, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1, 3);
    {
        pthread_mutex_lock(&henry1.mutex);
        const t_event *k = henry1.count >= 3 ? &henry1.events[2] : NULL;
        pthread_mutex_unlock(&henry1.mutex);
        REQUIRE(k != NULL);
        CHECK_INT(k->kind, BECKON_EVENT_CONNECTION_STATE_CHANGED);
        CHECK_INT(k->connection_state, BECKON_CONNECTION_DISCONNECTED);
        CHECK_INT(k->connection_reason, BECKON_REASON_KICKED_OUT);
    }
    CHECK_INT(t_count_events(&henry2, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1), 2);
    const char *one_bob[] = {BOB};
    beckon_invitation_config cfg7 = t_invitation(30, NULL);
    CHECK_CODE(beckon_send_invitation(h1, one_bob, 1, &cfg7, t_on_send, NULL), BECKON_ERROR_NOT_LOGGED_IN, NULL);
    const char *henry[] = {HENRY};
    t_op sent7;
    t_op_init(&sent7, "send #7 to henry", &alice);
    send_op(a, &sent7, henry, 1, 30, NULL, NULL, 0);
    WAIT_EVENTS(&henry2, BECKON_EVENT_INVITATION_RECEIVED, sent7.invitation_id, NULL, -1, 1);
    CHECK_STR(t_find_event(&henry2, BECKON_EVENT_INVITATION_RECEIVED, sent7.invitation_id, NULL, -1)->extended_data,
              "");
    flush(h1, &henry1);
    CHECK_INT(t_count_events(&henry1, BECKON_EVENT_INVITATION_RECEIVED, NULL, NULL, -1), 0);

    T_SECTION("8. logout events; the inviter's logout cancels its pending invitations (rule 7)");
    t_op sent8;
    t_op_init(&sent8, "send #8 to carol", &alice);
    const char *just_carol[] = {CAROL};
    send_op(a, &sent8, just_carol, 1, 30, "eighth", NULL, 0);
    const char *id8 = sent8.invitation_id;
    WAIT_EVENTS(&carol, BECKON_EVENT_INVITATION_RECEIVED, id8, NULL, -1, 1);
    size_t alice_conn_before = t_count_events(&alice, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1);
    t_op out;
    t_op_init(&out, "alice logs out", &alice);
    CHECK_CODE(beckon_client_logout(a, t_on_result, &out), BECKON_OK, NULL);
    CHECK_OP(&out, BECKON_OK, NULL);
    WAIT_EVENTS(&carol, BECKON_EVENT_INVITATION_CANCELLED, id8, NULL, -1, 1);
    WAIT_EVENTS(&carol, USC, id8, CAROL, BECKON_INVITEE_CANCELLED, 1);
    CHECK_STR(t_find_event(&carol, BECKON_EVENT_INVITATION_CANCELLED, id8, NULL, -1)->inviter, ALICE);
    CHECK_INT(t_count_events(&alice, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1), alice_conn_before + 1);
    {
        pthread_mutex_lock(&alice.mutex);
        const t_event *last = NULL;
        for (size_t i = 0; i < alice.count; i++)
            if (alice.events[i].kind == BECKON_EVENT_CONNECTION_STATE_CHANGED) last = &alice.events[i];
        pthread_mutex_unlock(&alice.mutex);
        REQUIRE(last != NULL);
        CHECK_INT(last->connection_state, BECKON_CONNECTION_DISCONNECTED);
        CHECK_INT(last->connection_reason, BECKON_REASON_LOGOUT);
        CHECK_MSG(last->seq < out.seq, "alice: DISCONNECTED (#%ld) after the logout callback (#%ld)", last->seq,
                  out.seq);
    }
    beckon_invitation_config cfg8 = t_invitation(30, NULL);
    CHECK_CODE(beckon_send_invitation(a, one_bob, 1, &cfg8, t_on_send, NULL), BECKON_ERROR_NOT_LOGGED_IN, NULL);
    CHECK_CODE(beckon_client_logout(a, NULL, NULL), BECKON_ERROR_NOT_LOGGED_IN, NULL);
    /* and back in on the same client */
    t_login(a, ALICE, NULL, &alice);
    CHECK_INT(t_count_events(&alice, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1), alice_conn_before + 3);
    t_op sent8b;
    t_op_init(&sent8b, "send after logging in again", &alice);
    send_op(a, &sent8b, one_bob, 1, 30, NULL, NULL, 0);
    WAIT_EVENTS(&bob, BECKON_EVENT_INVITATION_RECEIVED, sent8b.invitation_id, NULL, -1, 1);

    T_SECTION("9. the log handler");
    {
        long lines = log_get(&log_lines);
        t_log("  %ld log lines (error %ld, warn %ld, info %ld, debug %ld, trace %ld)", lines, log_per_level[1],
              log_per_level[2], log_per_level[3], log_per_level[4], log_per_level[5]);
        CHECK(lines > 0);
        CHECK_INT(log_get(&log_null), 0);
        CHECK_INT(log_get(&log_bad_tag), 0);
        CHECK_INT(log_get(&log_bad_level), 0);
        CHECK_INT(log_get(&log_bad_sub_tag), 0);
        CHECK(log_get(&log_per_level[BECKON_LOG_INFO]) > 0);
        CHECK_INT(log_get(&log_per_level[BECKON_LOG_DEBUG]), 0);
        pthread_mutex_lock(&log_lock);
        CHECK_MSG(log_last_api_warning[0] != '\0', "no WARN line under \"api\" for a refused call");
        t_log("  last api warning: %s", log_last_api_warning);
        pthread_mutex_unlock(&log_lock);
        /* DEBUG lets debug lines through */
        pthread_mutex_lock(&log_lock);
        log_max_level = BECKON_LOG_DEBUG;
        pthread_mutex_unlock(&log_lock);
        REQUIRE_CODE(beckon_set_log_handler(on_log, &log_marker, BECKON_LOG_DEBUG), BECKON_OK, NULL);
        t_op sent9;
        t_op_init(&sent9, "send #9 (debug logging)", &alice);
        send_op(a, &sent9, just_carol, 1, 30, NULL, NULL, 0);
        t_op cancel9;
        t_op_init(&cancel9, "cancel #9", &alice);
        CHECK_CODE(beckon_cancel_invitation(a, sent9.invitation_id, NULL, 0, NULL, t_on_cancel, &cancel9), BECKON_OK,
                   NULL);
        CHECK_OP(&cancel9, BECKON_OK, NULL);
        if (t_on_server())
            t_skip("debug-log-lines", "the DEBUG lines of a send and cancel come from the hub, which runs in the "
                                      "server's process");
        else
            CHECK(log_get(&log_per_level[BECKON_LOG_DEBUG]) > 0);
        CHECK_INT(log_get(&log_bad_level), 0);
        /* off: nothing more */
        REQUIRE_CODE(beckon_set_log_handler(NULL, NULL, BECKON_LOG_OFF), BECKON_OK, NULL);
        long before = log_get(&log_marker);
        CHECK_CODE(beckon_client_login(NULL, "x", NULL, NULL, NULL), BECKON_ERROR_INVALID_ARGUMENT, NULL);
        t_op sent10;
        t_op_init(&sent10, "send #10 (logging off)", &alice);
        send_op(a, &sent10, just_carol, 1, 30, NULL, NULL, 0);
        flush(a, &alice);
        CHECK_INT(log_get(&log_marker), before);
        t_op_reset(&sent9);
        t_op_reset(&sent10);
        t_op_reset(&cancel9);
    }

    T_SECTION("10. every input is copied before the call returns");
    {
        /* heap copies of every input, scribbled over and freed right after each call */
        char *who = t_strdup(BOB);
        const char **list = malloc(sizeof *list);
        REQUIRE(list != NULL);
        list[0] = who;
        char *data = t_strdup("copied extended data");
        beckon_notification_config *n = calloc(1, sizeof *n);
        REQUIRE(n != NULL);
        n->struct_size = sizeof *n;
        n->title = t_strdup("copied title");
        n->message = t_strdup("copied message");
        n->resource_id = t_strdup("copied-res");
        n->payload = t_strdup("copied payload");
        beckon_invitation_config *ic = calloc(1, sizeof *ic);
        REQUIRE(ic != NULL);
        ic->struct_size = sizeof *ic;
        ic->timeout_seconds = 30;
        ic->extended_data = data;
        ic->notification = n;
        t_op sent11;
        t_op_init(&sent11, "send with inputs freed after the call", &alice);
        REQUIRE_CODE(beckon_send_invitation(a, list, 1, ic, t_on_send, &sent11), BECKON_OK, NULL);
        char *strings[] = {who, data, (char *)n->title, (char *)n->message, (char *)n->resource_id, (char *)n->payload};
        for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
            memset(strings[i], 'X', strlen(strings[i]));
            free(strings[i]);
        }
        memset(n, 0xA5, sizeof *n);
        memset(ic, 0xA5, sizeof *ic);
        list[0] = NULL;
        free(n);
        free(ic);
        free(list);
        CHECK_OP(&sent11, BECKON_OK, NULL);
        WAIT_EVENTS(&bob, BECKON_EVENT_INVITATION_RECEIVED, sent11.invitation_id, NULL, -1, 1);
        const t_event *r = t_find_event(&bob, BECKON_EVENT_INVITATION_RECEIVED, sent11.invitation_id, NULL, -1);
        CHECK_STR(r->extended_data, "copied extended data");
        CHECK_MSG(r->has_notification, "bob: no notification");
        if (r->has_notification && r->notification_struct_size == sizeof(beckon_notification_config)) {
            CHECK_STR(r->n_title, "copied title");
            CHECK_STR(r->n_message, "copied message");
            CHECK_STR(r->n_resource_id, "copied-res");
            CHECK_STR(r->n_payload, "copied payload");
        }
        char *id_copy = t_strdup(sent11.invitation_id);
        char *answer = t_strdup("copied answer");
        t_op acc11;
        t_op_init(&acc11, "accept with inputs freed after the call", &bob);
        REQUIRE_CODE(beckon_accept_invitation(b, id_copy, answer, t_on_result, &acc11), BECKON_OK, NULL);
        memset(id_copy, '0', strlen(id_copy));
        memset(answer, 'X', strlen(answer));
        free(id_copy);
        free(answer);
        CHECK_OP(&acc11, BECKON_OK, NULL);
        WAIT_EVENTS(&alice, BECKON_EVENT_INVITATION_ACCEPTED, sent11.invitation_id, BOB, -1, 1);
        CHECK_STR(t_find_event(&alice, BECKON_EVENT_INVITATION_ACCEPTED, sent11.invitation_id, NULL, -1)->extended_data,
                  "copied answer");
        t_op_reset(&sent11);
        t_log("  send and accept inputs were copied (freed and scribbled right after the calls)");
    }

    T_SECTION("11. TOKEN_WILL_EXPIRE: a token with less than 30 s left");
    if (t_on_server()) {
        t_skip("token-will-expire", "needs a memory hub with a secret; a --dev server accepts any token and "
                                    "knows no expiry");
    } else {
        beckon_hub_config hc;
        memset(&hc, 0, sizeof hc);
        hc.struct_size = sizeof hc;
        hc.secret = "flow-secret";
        REQUIRE_CODE(beckon_memory_hub_create("c-flow-secure", &hc), BECKON_OK, NULL);
        char token[BECKON_TOKEN_MAX_LEN];
        REQUIRE_CODE(beckon_token_create("flow-secret", TINA, (uint64_t)time(NULL) + 20, token, sizeof token),
                     BECKON_OK, NULL);
        t_recorder tina;
        t_recorder_init(&tina, TINA, 64);
        beckon_client *tc = t_client_with_recorder("memory://c-flow-secure", NULL, &tina);
        t_login(tc, TINA, token, &tina);
        t_event_query q = {&tina, BECKON_EVENT_TOKEN_WILL_EXPIRE, NULL, NULL, -1, 1};
        int got = t_wait_until(t_event_query_pred, &q, t_slow() ? 5000 : 2000);
        CHECK_MSG(got,
                  "tina: no TOKEN_WILL_EXPIRE within %d s of logging in with a token that expires in 20 s "
                  "(SEMANTICS.md events: sent 30 s before expiry)",
                  t_slow() ? 5 : 2);
        if (got) {
            const t_event *w = t_find_event(&tina, BECKON_EVENT_TOKEN_WILL_EXPIRE, NULL, NULL, -1);
            CHECK_MSG(w->seconds_left > 0 && w->seconds_left <= 20, "tina: seconds_left %u", w->seconds_left);
            check_unused_fields(&tina, w, 0, 0, 0);
        }
        beckon_client_free(tc);
        t_recorder_destroy(&tina);
    }

    T_SECTION("no extra events at the end; free");
    beckon_client *all[] = {a, b, c, e, f, g, i1, i2, h1, h2};
    for (int i = 0; i < 10; i++) flush(all[i], recs[i]);
    check_exact(&alice, id1, alice1, sizeof alice1 / sizeof alice1[0]);
    check_exact(&bob, id1, invitee1, 6);
    check_exact(&carol, id1, invitee1, 6);
    check_exact(&alice, id2, alice2, 4);
    check_exact(&alice, id3, alice3, 8);
    check_exact(&alice, id5, alice5, 3);
    check_exact(&alice, id3b, alice3b_final, 3);
    for (int i = 0; i < 10; i++) {
        beckon_client_free(all[i]);
        CHECK_INT(atomic_load(&recs[i]->overlaps), 0);
    }
    for (int i = 0; i < atomic_load(&hook_op_count); i++) t_op_reset(&hook_ops[i]);
    t_op *sends[] = {&sent3b, &sent1, &sent2, &sent3, &sent4, &sent5, &sent6, &sent7, &sent8, &sent8b, &cancel3a, &cancel3b};
    for (size_t i = 0; i < sizeof sends / sizeof sends[0]; i++) t_op_reset(sends[i]);
    for (int i = 0; i < 10; i++) t_recorder_destroy(recs[i]);
    return t_finish();
}

/*
 * test_history: beckon_query_invitations (ABI 2.3). Pages of a user's ended
 * invitations come newest first, both roles, with cursors across pages;
 * every result arrives exactly once with valid strings, also when the client
 * is freed with queries in flight; bad queries fail at once with a message
 * naming the field.
 *
 * On a memory hub, or with BECKON_TEST_SERVER_URL against that beckon-server
 * (users suffixed per run: scripts/c-tests-server.sh).
 */
#include "common.h"

#define HUB "memory://c-history"
#define ROUNDS 7

/* One page as a callback handed it, copied. */
typedef struct {
    atomic_int calls;
    atomic_int done;
    beckon_error error;
    char message[256];
    size_t count;
    char ids[16][80];
    char inviters[16][80];
    int32_t states[16];
    uint64_t created[16], ended[16];
    char next_cursor[128];
} page;

static void on_page(void *user_data, const beckon_invitation_page_result *r) {
    page *p = user_data;
    if (atomic_fetch_add(&p->calls, 1) != 0) T_FAIL("a page callback ran twice");
    p->error = r->error;
    snprintf(p->message, sizeof p->message, "%s", r->error_message);
    CHECK(r->next_cursor != NULL);
    snprintf(p->next_cursor, sizeof p->next_cursor, "%s", r->next_cursor ? r->next_cursor : "");
    CHECK_MSG(r->invitation_count == 0 || r->invitations != NULL, "invitations NULL with a count");
    p->count = r->invitation_count;
    for (size_t i = 0; i < r->invitation_count && i < 16; i++) {
        const beckon_invitation_summary *s = &r->invitations[i];
        snprintf(p->ids[i], sizeof p->ids[i], "%s", s->invitation_id);
        snprintf(p->inviters[i], sizeof p->inviters[i], "%s", s->inviter);
        CHECK_INT(s->invitee_count, 1);
        p->states[i] = s->invitee_count > 0 ? s->invitees[0].state : -1;
        p->created[i] = s->created_ms;
        p->ended[i] = s->ended_ms;
        CHECK_INT(s->sent_by_server, 0);
    }
    atomic_store(&p->done, 1);
}

static int page_done(void *arg) { return atomic_load(&((page *)arg)->done) >= 1; }

/* Runs a query and waits for its one callback. */
static void query(beckon_client *c, const beckon_invitation_query *q, page *p) {
    memset(p, 0, sizeof *p);
    REQUIRE_CODE(beckon_query_invitations(c, q, on_page, p), BECKON_OK, NULL);
    if (!t_wait_until(page_done, p, t_timeout_ms())) {
        T_FAIL("no page within the timeout");
        t_abort();
    }
    REQUIRE_INT(p->error, BECKON_OK);
}

static beckon_invitation_query make_query(int32_t role, uint32_t limit, const char *cursor) {
    beckon_invitation_query q;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.role = role;
    q.limit = limit;
    q.cursor = cursor;
    return q;
}

int main(void) {
    t_start("test_history");
    static t_recorder alice, bob;
    t_recorder_init(&alice, "alice", 256);
    t_recorder_init(&bob, "bob", 256);

    T_SECTION("before login: NOT_LOGGED_IN at once, no callback");
    const char *alice_id = t_user("alice"), *bob_id = t_user("bob");
    beckon_client *a = t_client_with_recorder(t_url(HUB), "alice-1", &alice);
    page never;
    memset(&never, 0, sizeof never);
    CHECK_CODE(beckon_query_invitations(a, NULL, on_page, &never), BECKON_ERROR_NOT_LOGGED_IN, NULL);
    t_login(a, alice_id, NULL, &alice);
    beckon_client *b = t_client_with_recorder(t_url(HUB), "bob-1", &bob);
    t_login(b, bob_id, NULL, &bob);

    T_SECTION("alice invites bob 7 times; bob refuses each");
    char ids[ROUNDS][80];
    for (int i = 0; i < ROUNDS; i++) {
        const char *who[] = {bob_id};
        beckon_invitation_config cfg = t_invitation(30, "");
        t_op sent;
        t_op_init(&sent, "send", &alice);
        REQUIRE_CODE(beckon_send_invitation(a, who, 1, &cfg, t_on_send, &sent), BECKON_OK, NULL);
        WAIT_OP(&sent);
        REQUIRE_INT(sent.error, BECKON_OK);
        snprintf(ids[i], sizeof ids[i], "%s", sent.invitation_id);
        WAIT_EVENTS(&bob, BECKON_EVENT_INVITATION_RECEIVED, ids[i], NULL, -1, 1);
        t_op refused;
        t_op_init(&refused, "refuse", &bob);
        REQUIRE_CODE(beckon_refuse_invitation(b, ids[i], "busy", t_on_result, &refused), BECKON_OK, NULL);
        WAIT_OP(&refused);
        REQUIRE_INT(refused.error, BECKON_OK);
        t_op_reset(&sent);
    }

    T_SECTION("alice pages through her history, 3 at a time, newest first");
    /* Newest sent first; invitations sent within one millisecond come in
     * id order, so the test checks the order by time and the set of ids. */
    page p;
    char cursor[128] = "";
    int seen = 0, found[ROUNDS] = {0};
    uint64_t previous = UINT64_MAX;
    for (int pages = 0; pages < 5; pages++) {
        beckon_invitation_query q = make_query(BECKON_HISTORY_ANY, 3, cursor);
        query(a, &q, &p);
        CHECK_MSG(p.count <= 3, "a page of %zu", p.count);
        for (size_t i = 0; i < p.count; i++, seen++) {
            REQUIRE(seen < ROUNDS);
            for (int k = 0; k < ROUNDS; k++)
                if (strcmp(p.ids[i], ids[k]) == 0) found[k]++;
            CHECK_MSG(p.created[i] <= previous, "not newest first: %llu after %llu",
                      (unsigned long long)p.created[i], (unsigned long long)previous);
            previous = p.created[i];
            CHECK_STR(p.inviters[i], alice_id);
            CHECK_INT(p.states[i], BECKON_INVITEE_REJECTED);
            CHECK(p.created[i] > 0 && p.created[i] <= p.ended[i]);
        }
        if (p.next_cursor[0] == '\0') break;
        snprintf(cursor, sizeof cursor, "%s", p.next_cursor);
    }
    CHECK_INT(seen, ROUNDS);
    for (int k = 0; k < ROUNDS; k++) CHECK_MSG(found[k] == 1, "invitation %s listed %d times", ids[k], found[k]);

    T_SECTION("roles: bob sent none and received all; NULL is every default");
    beckon_invitation_query sent_q = make_query(BECKON_HISTORY_SENT, 0, NULL);
    query(b, &sent_q, &p);
    CHECK_INT(p.count, 0);
    CHECK_STR(p.next_cursor, "");
    beckon_invitation_query received_q = make_query(BECKON_HISTORY_RECEIVED, 100, "");
    query(b, &received_q, &p);
    CHECK_INT(p.count, ROUNDS);
    query(b, NULL, &p);
    CHECK_INT(p.count, ROUNDS);

    T_SECTION("a time range: until_ms before the first send finds nothing");
    beckon_invitation_query old = make_query(BECKON_HISTORY_ANY, 10, NULL);
    old.since_ms = 1;
    old.until_ms = 2;
    query(a, &old, &p);
    CHECK_INT(p.count, 0);

    T_SECTION("bad queries fail at once, naming the field");
    beckon_invitation_query bad = make_query(9, 0, NULL);
    CHECK_CODE(beckon_query_invitations(a, &bad, on_page, &never), BECKON_ERROR_INVALID_ARGUMENT, "query.role");
    bad = make_query(BECKON_HISTORY_ANY, 101, NULL);
    CHECK_CODE(beckon_query_invitations(a, &bad, on_page, &never), BECKON_ERROR_INVALID_ARGUMENT, "query.limit");
    bad = make_query(BECKON_HISTORY_ANY, 0, "not-a-cursor");
    CHECK_CODE(beckon_query_invitations(a, &bad, on_page, &never), BECKON_ERROR_INVALID_ARGUMENT, "query.cursor");
    bad = make_query(BECKON_HISTORY_ANY, 0, "\xff\xfe");
    CHECK_CODE(beckon_query_invitations(a, &bad, on_page, &never), BECKON_ERROR_INVALID_ARGUMENT, "query.cursor");
    bad = make_query(BECKON_HISTORY_ANY, 0, NULL);
    bad.until_ms = 5;
    bad.since_ms = 10;
    CHECK_CODE(beckon_query_invitations(a, &bad, on_page, &never), BECKON_ERROR_INVALID_ARGUMENT, "query.until_ms");
    bad = make_query(BECKON_HISTORY_ANY, 0, NULL);
    bad.struct_size = 4;
    CHECK_CODE(beckon_query_invitations(a, &bad, on_page, &never), BECKON_ERROR_INVALID_ARGUMENT, "query.struct_size");
    CHECK_CODE(beckon_query_invitations(NULL, NULL, on_page, &never), BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_INT(atomic_load(&never.calls), 0);

    T_SECTION("a NULL callback is allowed");
    CHECK_CODE(beckon_query_invitations(a, NULL, NULL, NULL), BECKON_OK, NULL);

    T_SECTION("freed with queries in flight: each callback runs exactly once");
    enum { IN_FLIGHT = 40 };
    static page flying[IN_FLIGHT];
    for (int i = 0; i < IN_FLIGHT; i++) {
        memset(&flying[i], 0, sizeof flying[i]);
        REQUIRE_CODE(beckon_query_invitations(a, NULL, on_page, &flying[i]), BECKON_OK, NULL);
    }
    CHECK_CODE(beckon_client_free(a), BECKON_OK, NULL);
    int shut = 0;
    for (int i = 0; i < IN_FLIGHT; i++) {
        CHECK_INT(atomic_load(&flying[i].calls), 1);
        if (flying[i].error == BECKON_ERROR_SHUTDOWN) shut++;
        else CHECK_INT(flying[i].error, BECKON_OK);
    }
    t_log("  %d of %d answered SHUTDOWN", shut, IN_FLIGHT);

    CHECK_CODE(beckon_client_free(b), BECKON_OK, NULL);
    t_recorder_destroy(&alice);
    t_recorder_destroy(&bob);
    return t_finish();
}

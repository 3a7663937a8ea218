/*
 * test_panic: no panic crosses the C ABI (needs the `test-hooks` feature).
 *
 *  - BECKON_TEST_PANIC_ENTRY: the next exported call returns
 *    BECKON_ERROR_INTERNAL with a message (not a crash); its callback never
 *    runs; the hook fires once; outputs are left as on any other error.
 *  - BECKON_TEST_PANIC_TRANSPORT: the next operation returns BECKON_OK and its
 *    callback runs exactly once with BECKON_ERROR_INTERNAL; nothing happened
 *    in the hub; the client goes on working.
 *  - BECKON_TEST_PANIC_DISPATCH: the next event is dropped; callbacks and
 *    later events still arrive.
 *
 * Rust prints each caught panic to stderr; that is expected here.
 */
#include "common.h"

#ifndef BECKON_TEST_HOOKS
#error "compile with -DBECKON_TEST_HOOKS (and the library with --features test-hooks)"
#endif

#define HUB "memory://c-panic"

static atomic_int unexpected;

static void never_result(void *ud, const beckon_result *r) {
    (void)ud;
    atomic_fetch_add(&unexpected, 1);
    T_FAIL("a callback of a call that returned an error ran (%s)", beckon_error_name(r->error));
}

static void never_send(void *ud, const beckon_send_result *r) {
    (void)ud;
    atomic_fetch_add(&unexpected, 1);
    T_FAIL("a send callback of a call that returned an error ran (%s)", beckon_error_name(r->error));
}

static void never_log(void *ud, int32_t level, const char *tag, const char *sub, const char *msg) {
    (void)ud;
    (void)level;
    (void)tag;
    (void)sub;
    (void)msg;
}

static void flush(beckon_client *c, t_recorder *rec) {
    t_op op;
    t_op_init(&op, "flush", rec);
    REQUIRE_CODE(beckon_accept_invitation(c, "fffffffffffffffffffffffffffffff0", NULL, t_on_result, &op), BECKON_OK,
                 NULL);
    WAIT_OP(&op);
    CHECK_INT(op.error, BECKON_ERROR_INVITATION_NOT_FOUND);
}

#define CHECK_INTERNAL(expr)                                                         \
    do {                                                                             \
        beckon_test_force_panic(BECKON_TEST_PANIC_ENTRY);                            \
        t_check_code(__FILE__, __LINE__, #expr, (expr), BECKON_ERROR_INTERNAL, "panic"); \
    } while (0)

int main(void) {
    t_start("test_panic");
    t_recorder alice_rec, bob_rec;
    t_recorder_init(&alice_rec, "alice", 256);
    t_recorder_init(&bob_rec, "bob", 256);

    T_SECTION("BECKON_TEST_PANIC_ENTRY: the next call returns INTERNAL");
    beckon_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.struct_size = sizeof cfg;
    cfg.server_url = HUB;
    beckon_client *sentinel = (beckon_client *)&cfg;
    beckon_client *c = sentinel;
    CHECK_INTERNAL(beckon_client_new(&cfg, &c));
    CHECK_MSG(c == NULL, "beckon_client_new returned INTERNAL but left *out_client = %p (header: set to NULL on error)",
              (void *)c);
    if (c != NULL && c != sentinel) beckon_client_free(c);
    /* the hook fires once */
    c = NULL;
    CHECK_CODE(beckon_client_new(&cfg, &c), BECKON_OK, NULL);
    REQUIRE(c != NULL);
    beckon_client_free(c);
    /* arming then disarming: nothing happens */
    beckon_test_force_panic(BECKON_TEST_PANIC_ENTRY);
    beckon_test_force_panic(0);
    c = NULL;
    CHECK_CODE(beckon_client_new(&cfg, &c), BECKON_OK, NULL);
    beckon_client_free(c);

    beckon_client *alice = t_client_with_recorder(HUB, NULL, &alice_rec);
    beckon_client *bob = t_client_with_recorder(HUB, NULL, &bob_rec);
    CHECK_INTERNAL(beckon_client_login(alice, "alice", NULL, never_result, NULL));
    t_login(alice, "alice", NULL, &alice_rec); /* the failed call changed nothing */
    t_login(bob, "bob", NULL, &bob_rec);

    const char *to_bob[] = {"bob"};
    beckon_invitation_config inv = t_invitation(30, "panic test");
    CHECK_INTERNAL(beckon_send_invitation(alice, to_bob, 1, &inv, never_send, NULL));
    CHECK_INTERNAL(beckon_accept_invitation(bob, "0123456789abcdef0123456789abcdef", NULL, never_result, NULL));
    CHECK_INTERNAL(beckon_client_set_event_handler(alice, t_record_event, &alice_rec));
    CHECK_INTERNAL(beckon_set_log_handler(never_log, NULL, BECKON_LOG_INFO));
    CHECK_INTERNAL(beckon_client_renew_token(alice, "tok", never_result, NULL));
    CHECK_INTERNAL(beckon_client_logout(alice, never_result, NULL));
    CHECK_INTERNAL(beckon_memory_hub_create("c-panic-other", NULL));
    {
        char buf[BECKON_TOKEN_MAX_LEN];
        memset(buf, 'Z', sizeof buf);
        CHECK_INTERNAL(beckon_token_create("secret", "alice", 99999999999ull, buf, sizeof buf));
    }
    {
        beckon_client *p = t_client_new(HUB, NULL, BECKON_DISPATCH_POLL);
        beckon_test_force_panic(BECKON_TEST_PANIC_ENTRY);
        int rc = t_poll(p, 0);
        CHECK_INT(rc, -BECKON_ERROR_INTERNAL);
        CHECK_MSG(strstr(beckon_last_error_message(), "panic") != NULL, "poll: message \"%s\"",
                  beckon_last_error_message());
        CHECK_INT(t_poll(p, 0), 0);
        beckon_client_free(p);
    }
    beckon_test_force_panic(0);
    /* still logged in, still working: the INTERNAL calls did nothing */
    flush(alice, &alice_rec);
    flush(bob, &bob_rec);
    CHECK_INT(t_count_events(&bob_rec, BECKON_EVENT_INVITATION_RECEIVED, NULL, NULL, -1), 0);
    /* alice's handler is still the recorder (the panicking set_event_handler changed nothing) */
    CHECK_INT(t_count_events(&alice_rec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1), 2);

    T_SECTION("BECKON_TEST_PANIC_TRANSPORT: the next operation's callback gets INTERNAL, once");
    {
        t_op op;
        t_op_init(&op, "send with a transport panic", &alice_rec);
        beckon_test_force_panic(BECKON_TEST_PANIC_TRANSPORT);
        CHECK_CODE(beckon_send_invitation(alice, to_bob, 1, &inv, t_on_send, &op), BECKON_OK, NULL);
        CHECK_OP(&op, BECKON_ERROR_INTERNAL, NULL);
        CHECK_STR(op.invitation_id, "");
        CHECK_INT(op.invitee_count, 0);
        flush(alice, &alice_rec);
        flush(bob, &bob_rec);
        CHECK_INT(atomic_load(&op.calls), 1);
        CHECK_INT(t_count_events(&bob_rec, BECKON_EVENT_INVITATION_RECEIVED, NULL, NULL, -1), 0);
        t_op_reset(&op);

        t_op_init(&op, "accept with a transport panic", &bob_rec);
        beckon_test_force_panic(BECKON_TEST_PANIC_TRANSPORT);
        CHECK_CODE(beckon_accept_invitation(bob, "0123456789abcdef0123456789abcdef", NULL, t_on_result, &op),
                   BECKON_OK, NULL);
        CHECK_OP(&op, BECKON_ERROR_INTERNAL, NULL);

        t_op_init(&op, "refuse with a transport panic", &bob_rec);
        beckon_test_force_panic(BECKON_TEST_PANIC_TRANSPORT);
        CHECK_CODE(beckon_refuse_invitation(bob, "0123456789abcdef0123456789abcdef", NULL, t_on_result, &op),
                   BECKON_OK, NULL);
        CHECK_OP(&op, BECKON_ERROR_INTERNAL, NULL);

        /* a real invitation, then a cancel that panics: the invitation is untouched */
        t_op sent;
        t_op_init(&sent, "send", &alice_rec);
        CHECK_CODE(beckon_send_invitation(alice, to_bob, 1, &inv, t_on_send, &sent), BECKON_OK, NULL);
        CHECK_OP(&sent, BECKON_OK, NULL);
        WAIT_EVENTS(&bob_rec, BECKON_EVENT_INVITATION_RECEIVED, sent.invitation_id, NULL, -1, 1);
        t_op cancel;
        t_op_init(&cancel, "cancel with a transport panic", &alice_rec);
        beckon_test_force_panic(BECKON_TEST_PANIC_TRANSPORT);
        CHECK_CODE(beckon_cancel_invitation(alice, sent.invitation_id, NULL, 0, NULL, t_on_cancel, &cancel),
                   BECKON_OK, NULL);
        CHECK_OP(&cancel, BECKON_ERROR_INTERNAL, NULL);
        CHECK_INT(cancel.invitee_count, 0);
        t_op acc;
        t_op_init(&acc, "accept after the failed cancel", &bob_rec);
        CHECK_CODE(beckon_accept_invitation(bob, sent.invitation_id, NULL, t_on_result, &acc), BECKON_OK, NULL);
        CHECK_OP(&acc, BECKON_OK, NULL);
        WAIT_EVENTS(&alice_rec, BECKON_EVENT_INVITATION_ACCEPTED, sent.invitation_id, "bob", -1, 1);
        CHECK_INT(t_count_events(&bob_rec, BECKON_EVENT_INVITATION_CANCELLED, NULL, NULL, -1), 0);
        t_op_reset(&sent);
        t_log("  send, accept, refuse and cancel each got INTERNAL exactly once; the client works on");
    }

    T_SECTION("BECKON_TEST_PANIC_DISPATCH: the next event is dropped; later events arrive");
    {
        flush(alice, &alice_rec);
        flush(bob, &bob_rec);
        size_t bob_conn = t_count_events(&bob_rec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1);
        CHECK_INT(bob_conn, 2);
        beckon_test_force_panic(BECKON_TEST_PANIC_DISPATCH);
        t_op out;
        t_op_init(&out, "bob's logout (its DISCONNECTED event panics)", &bob_rec);
        CHECK_CODE(beckon_client_logout(bob, t_on_result, &out), BECKON_OK, NULL);
        CHECK_OP(&out, BECKON_OK, NULL);
        /* the dropped event: DISCONNECTED (LOGOUT) never reached the handler */
        CHECK_INT(t_count_events(&bob_rec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1), bob_conn);
        /* the dispatcher goes on: later events and callbacks arrive */
        t_login(bob, "bob", NULL, &bob_rec);
        CHECK_INT(t_count_events(&bob_rec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1), bob_conn + 2);
        t_op sent;
        t_op_init(&sent, "send after the dispatch panic", &alice_rec);
        CHECK_CODE(beckon_send_invitation(alice, to_bob, 1, &inv, t_on_send, &sent), BECKON_OK, NULL);
        CHECK_OP(&sent, BECKON_OK, NULL);
        WAIT_EVENTS(&bob_rec, BECKON_EVENT_INVITATION_RECEIVED, sent.invitation_id, NULL, -1, 1);
        WAIT_EVENTS(&alice_rec, BECKON_EVENT_INVITATION_USER_STATE_CHANGED, sent.invitation_id, "bob",
                    BECKON_INVITEE_RECEIVED, 1);
        t_op_reset(&sent);
        t_log("  one event dropped; the dispatcher went on");
    }

    T_SECTION("BECKON_TEST_PANIC_DISPATCH in poll mode");
    {
        t_recorder prec;
        t_recorder_init(&prec, "polly", 64);
        prec.poll_mode = 1;
        beckon_client *p = t_client_new(HUB, NULL, BECKON_DISPATCH_POLL);
        REQUIRE_CODE(beckon_client_set_event_handler(p, t_record_event, &prec), BECKON_OK, NULL);
        t_op login;
        t_op_init(&login, "polly's login", &prec);
        REQUIRE_CODE(beckon_client_login(p, "polly", NULL, t_on_result, &login), BECKON_OK, NULL);
        beckon_test_force_panic(BECKON_TEST_PANIC_DISPATCH);
        int ran = t_poll(p, 1000); /* CONNECTING (panics, dropped), CONNECTED, login callback */
        CHECK_INT(ran, 3);
        CHECK_INT(atomic_load(&login.calls), 1);
        CHECK_INT(login.error, BECKON_OK);
        CHECK_INT(t_count_events(&prec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1), 1);
        const t_event *e = t_find_event(&prec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1);
        REQUIRE(e != NULL);
        CHECK_INT(e->connection_state, BECKON_CONNECTION_CONNECTED);
        beckon_client_free(p);
        t_recorder_destroy(&prec);
    }

    beckon_test_force_panic(0);
    beckon_client_free(alice);
    beckon_client_free(bob);
    CHECK_INT(atomic_load(&unexpected), 0);
    CHECK_INT(atomic_load(&alice_rec.overlaps), 0);
    CHECK_INT(atomic_load(&bob_rec.overlaps), 0);
    t_recorder_destroy(&alice_rec);
    t_recorder_destroy(&bob_rec);
    return t_finish();
}

/*
 * test_abi_2_1: a program built against the header of ABI 2.1, frozen in
 * tests/c/abi/beckon-2.1.h, runs on the library built today, using what 2.1
 * added: the per-operation configs and the _ex functions, queued log
 * delivery, beckon_client_free's result, the event's own notification type.
 * Every later minor version must keep it working unchanged. On a hub that
 * pushes, it also gets INVITATION_PUSH_RESULT (10), a kind 2.2 added: well
 * formed as far as the 2.1 struct goes, and ignored like any kind it does
 * not know (the rule since 2.0).
 *
 * As test_abi_2_0.c: the frozen header comes before common.h, whose own
 * #include of beckon.h then adds nothing (the same include guard).
 */
#define _POSIX_C_SOURCE 200809L /* as common.h has it, before any system header */
#include "abi/beckon-2.1.h"

#include "common.h"

#define HUB "memory://c-abi-2-1"
#define PUSH_HUB_NAME "c-abi-2-1-push"

/* The test hook of ABI 2.2 that makes a hub which pushes (the 2.1 header
 * predates it): the setup of this test, not something the 2.1 program
 * under test uses. A server with push configured is the same to it. */
beckon_error beckon_test_memory_hub_create_with_push(const char *name);

/* What a 2.1 program knows: kinds 1 to 9. */
#define KNOWN_KINDS 9

static atomic_long log_records;

static void count_log(void *user_data, int32_t level, const char *tag, const char *sub_tag, const char *message) {
    (void)user_data;
    (void)level;
    (void)tag;
    (void)sub_tag;
    (void)message;
    atomic_fetch_add(&log_records, 1);
}

static int some_log_record(void *unused) {
    (void)unused;
    return atomic_load(&log_records) > 0;
}

int main(void) {
    t_start("test_abi_2_1");
    T_SECTION("the library serves a program built against ABI 2.1");
    CHECK_INT(BECKON_ABI_VERSION, (2u << 16) | 1u);
    CHECK_MSG(BECKON_ABI_COMPATIBLE(beckon_abi_version()), "library ABI %#x refuses a 2.1 program",
              beckon_abi_version());

    T_SECTION("queued log delivery");
    beckon_log_config log;
    memset(&log, 0, sizeof log);
    log.struct_size = sizeof log;
    log.max_level = BECKON_LOG_INFO;
    log.delivery = BECKON_LOG_QUEUED;
    log.handler = count_log;
    REQUIRE_CODE(beckon_set_log_config(&log), BECKON_OK, NULL);

    T_SECTION("the invitation flow with the 2.1 configs");
    t_recorder alice_events, bob_events;
    t_recorder_init(&alice_events, "alice", 64);
    t_recorder_init(&bob_events, "bob", 64);
    beckon_client *alice = t_client_with_recorder(HUB, "alice-phone", &alice_events);
    beckon_client *bob = t_client_with_recorder(HUB, "bob-phone", &bob_events);
    t_login(alice, "alice", NULL, &alice_events);
    t_login(bob, "bob", NULL, &bob_events);

    beckon_notification_config note;
    memset(&note, 0, sizeof note);
    note.struct_size = sizeof note;
    note.title = "Call from alice";
    beckon_invitation_config config = t_invitation(30, "video");
    config.notification = &note;
    config.request_timeout_ms = 5000;
    const char *invitees[] = {"bob"};
    t_op sent;
    t_op_init(&sent, "send", &alice_events);
    REQUIRE_CODE(beckon_send_invitation(alice, invitees, 1, &config, t_on_send, &sent), BECKON_OK, NULL);
    CHECK_OP(&sent, BECKON_OK, NULL);
    WAIT_EVENTS(&bob_events, BECKON_EVENT_INVITATION_RECEIVED, sent.invitation_id, NULL, -1, 1);
    const t_event *received =
        t_find_event(&bob_events, BECKON_EVENT_INVITATION_RECEIVED, sent.invitation_id, NULL, -1);
    REQUIRE(received != NULL);
    CHECK(received->has_notification);
    CHECK_INT(received->notification_struct_size, sizeof(beckon_event_notification));
    CHECK_STR(received->n_title, "Call from alice");

    beckon_answer_config answer;
    memset(&answer, 0, sizeof answer);
    answer.struct_size = sizeof answer;
    answer.request_timeout_ms = 5000;
    answer.extended_data = "ok";
    t_op accepted;
    t_op_init(&accepted, "accept_ex", &bob_events);
    REQUIRE_CODE(beckon_accept_invitation_ex(bob, sent.invitation_id, &answer, t_on_result, &accepted), BECKON_OK,
                 NULL);
    CHECK_OP(&accepted, BECKON_OK, NULL);
    WAIT_EVENTS(&alice_events, BECKON_EVENT_INVITATION_ACCEPTED, sent.invitation_id, "bob", -1, 1);

    beckon_cancel_config cancel;
    memset(&cancel, 0, sizeof cancel);
    cancel.struct_size = sizeof cancel;
    t_op cancelled;
    t_op_init(&cancelled, "cancel_ex after the answer", &alice_events);
    REQUIRE_CODE(beckon_cancel_invitation_ex(alice, sent.invitation_id, &cancel, t_on_cancel, &cancelled), BECKON_OK,
                 NULL);
    WAIT_OP(&cancelled);
    CHECK_MSG(cancelled.error == BECKON_OK || cancelled.error == BECKON_ERROR_INVITATION_CLOSED,
              "cancel after the only invitee accepted: %s", beckon_error_name(cancelled.error));

    T_SECTION("a kind added after 2.1 arrives well formed, and is ignored");
    REQUIRE_CODE(beckon_test_memory_hub_create_with_push(PUSH_HUB_NAME), BECKON_OK, NULL);
    t_recorder carol_events;
    t_recorder_init(&carol_events, "carol", 64);
    beckon_client *carol = t_client_with_recorder("memory://" PUSH_HUB_NAME, "carol-phone", &carol_events);
    t_login(carol, "carol", NULL, &carol_events);
    /* Nobody is online for "dave", who has no push target: the hub tells
     * the inviter so, in an INVITATION_PUSH_RESULT. */
    const char *offline[] = {"dave"};
    beckon_invitation_config plain = t_invitation(30, "");
    t_op unanswered;
    t_op_init(&unanswered, "send to an offline invitee", &carol_events);
    REQUIRE_CODE(beckon_send_invitation(carol, offline, 1, &plain, t_on_send, &unanswered), BECKON_OK, NULL);
    CHECK_OP(&unanswered, BECKON_OK, NULL);
    WAIT_EVENTS(&carol_events, 10, unanswered.invitation_id, NULL, -1, 1);
    /* The recorder checked every string a 2.1 program may read (none is
     * NULL); a 2.1 program has no name for the kind, the library does. */
    const t_event *unknown = t_find_event(&carol_events, 10, unanswered.invitation_id, NULL, -1);
    REQUIRE(unknown != NULL);
    CHECK_STR(unknown->user_id, "dave");
    CHECK_MSG(unknown->kind > KNOWN_KINDS, "kind %d", (int)unknown->kind);
    CHECK_STR(beckon_event_kind_name(unknown->kind), "INVITATION_PUSH_RESULT");
    CHECK_INT(unknown->invitee_count, 0);
    /* Ignoring it, the program carries on: its cancel works and the rest of
     * the invitation's events come as before. */
    t_op withdrawn;
    t_op_init(&withdrawn, "cancel", &carol_events);
    REQUIRE_CODE(beckon_cancel_invitation(carol, unanswered.invitation_id, NULL, 0, NULL, t_on_cancel, &withdrawn),
                 BECKON_OK, NULL);
    CHECK_OP(&withdrawn, BECKON_OK, NULL);
    WAIT_EVENTS(&carol_events, BECKON_EVENT_INVITATION_USER_STATE_CHANGED, unanswered.invitation_id, "dave",
                BECKON_INVITEE_CANCELLED, 1);
    CHECK_INT(t_count_events(&carol_events, 10, NULL, NULL, -1), 1);

    CHECK_CODE(beckon_client_free(carol), BECKON_OK, NULL);
    CHECK_CODE(beckon_client_free(alice), BECKON_OK, NULL);
    CHECK_CODE(beckon_client_free(bob), BECKON_OK, NULL);
    /* Queued records reach the handler from the library's log thread, and
     * those still queued when logging stops are dropped: wait for one. */
    CHECK_MSG(t_wait_until(some_log_record, NULL, t_timeout_ms()), "no log record was delivered");
    log.handler = NULL;
    log.max_level = BECKON_LOG_OFF;
    REQUIRE_CODE(beckon_set_log_config(&log), BECKON_OK, NULL);
    t_op_reset(&sent);
    t_op_reset(&accepted);
    t_op_reset(&cancelled);
    t_op_reset(&unanswered);
    t_op_reset(&withdrawn);
    t_recorder_destroy(&carol_events);
    t_recorder_destroy(&alice_events);
    t_recorder_destroy(&bob_events);
    return t_finish();
}

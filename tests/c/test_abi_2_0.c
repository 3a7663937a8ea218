/*
 * test_abi_2_0: a program built against the header of ABI 2.0, frozen in
 * tests/c/abi/beckon-2.0.h, runs on the library built today. Every later
 * minor version must keep it working unchanged: config structs sized by the
 * old header, the old constants, the old functions.
 *
 * It includes the frozen header before common.h, whose own #include of
 * beckon.h then adds nothing (the include guard is the same), so the whole
 * program sees ABI 2.0 only.
 */
#define _POSIX_C_SOURCE 200809L /* as common.h has it, before any system header */
#include "abi/beckon-2.0.h"

#include "common.h"

#define HUB "memory://c-abi-2-0"

int main(void) {
    t_start("test_abi_2_0");
    T_SECTION("the library serves a program built against ABI 2.0");
    CHECK_INT(BECKON_ABI_VERSION, (2u << 16) | 0u);
    CHECK_MSG(BECKON_ABI_COMPATIBLE(beckon_abi_version()), "library ABI %#x refuses a 2.0 program",
              beckon_abi_version());

    T_SECTION("the invitation flow with 2.0-sized structs");
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
    beckon_invitation_config config = t_invitation(30, "{\"call\":\"video\"}");
    config.notification = &note;
    const char *invitees[] = {"bob"};
    t_op sent;
    t_op_init(&sent, "send", &alice_events);
    REQUIRE_CODE(beckon_send_invitation(alice, invitees, 1, &config, t_on_send, &sent), BECKON_OK, NULL);
    CHECK_OP(&sent, BECKON_OK, NULL);

    WAIT_EVENTS(&bob_events, BECKON_EVENT_INVITATION_RECEIVED, sent.invitation_id, NULL, -1, 1);
    const t_event *received =
        t_find_event(&bob_events, BECKON_EVENT_INVITATION_RECEIVED, sent.invitation_id, NULL, -1);
    REQUIRE(received != NULL);
    CHECK_STR(received->inviter, "alice");
    CHECK_STR(received->extended_data, "{\"call\":\"video\"}");
    CHECK(received->has_notification);
    CHECK_STR(received->n_title, "Call from alice");

    t_op accepted;
    t_op_init(&accepted, "accept", &bob_events);
    REQUIRE_CODE(beckon_accept_invitation(bob, sent.invitation_id, "ok", t_on_result, &accepted), BECKON_OK,
                 NULL);
    CHECK_OP(&accepted, BECKON_OK, NULL);
    WAIT_EVENTS(&alice_events, BECKON_EVENT_INVITATION_ACCEPTED, sent.invitation_id, "bob", -1, 1);

    beckon_client_free(alice);
    beckon_client_free(bob);
    t_op_reset(&sent);
    t_op_reset(&accepted);
    t_recorder_destroy(&alice_events);
    t_recorder_destroy(&bob_events);
    return t_finish();
}

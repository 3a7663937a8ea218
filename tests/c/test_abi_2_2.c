/*
 * test_abi_2_2: a program built against the header of ABI 2.2, frozen in
 * tests/c/abi/beckon-2.2.h, runs on the library built today, using what 2.2
 * added: beckon_push_target with beckon_client_set_push_target and
 * beckon_client_clear_push_target, the INVITATION_PUSH_RESULT event and its
 * fields at the end of beckon_event, and the names of the new constants.
 * Every later minor version must keep it working unchanged.
 *
 * As test_abi_2_0.c: the frozen header comes before common.h, whose own
 * #include of beckon.h then adds nothing (the same include guard). The test
 * hooks it uses are those of the same frozen header.
 */
#define _POSIX_C_SOURCE 200809L /* as common.h has it, before any system header */
#include "abi/beckon-2.2.h"

#include "common.h"

#define HUB_NAME "c-abi-2-2"
#define HUB "memory://" HUB_NAME

int main(void) {
    t_start("test_abi_2_2");
    T_SECTION("the library serves a program built against ABI 2.2");
    CHECK_INT(BECKON_ABI_VERSION, (2u << 16) | 2u);
    CHECK_MSG(BECKON_ABI_COMPATIBLE(beckon_abi_version()), "library ABI %#x refuses a 2.2 program",
              beckon_abi_version());
    CHECK_STR(beckon_event_kind_name(BECKON_EVENT_INVITATION_PUSH_RESULT), "INVITATION_PUSH_RESULT");
    CHECK_STR(beckon_push_provider_name(BECKON_PUSH_PROVIDER_APNS_VOIP), "APNS_VOIP");
    CHECK_STR(beckon_push_outcome_name(BECKON_PUSH_NO_TARGET), "NO_TARGET");

    T_SECTION("push targets and push results");
    REQUIRE_CODE(beckon_test_memory_hub_create_with_push(HUB_NAME), BECKON_OK, NULL);
    beckon_push_target target;
    memset(&target, 0, sizeof target);
    target.struct_size = sizeof target;
    target.provider = BECKON_PUSH_PROVIDER_FCM;
    target.token = "fcm-registration-token";
    REQUIRE_CODE(beckon_test_offline_push_target(HUB_NAME, "bob", "bob-phone", &target), BECKON_OK, NULL);

    t_recorder alice_events;
    t_recorder_init(&alice_events, "alice", 64);
    beckon_client *alice = t_client_with_recorder(HUB, "alice-phone", &alice_events);
    t_login(alice, "alice", NULL, &alice_events);

    beckon_push_target mine;
    memset(&mine, 0, sizeof mine);
    mine.struct_size = sizeof mine;
    mine.provider = BECKON_PUSH_PROVIDER_APNS_VOIP;
    mine.token = "abababababababababababababababababababababababababababababababab";
    mine.topic = "com.example.calls";
    mine.environment = BECKON_APNS_SANDBOX;
    t_op set, cleared;
    t_op_init(&set, "set_push_target", &alice_events);
    REQUIRE_CODE(beckon_client_set_push_target(alice, &mine, t_on_result, &set), BECKON_OK, NULL);
    CHECK_OP(&set, BECKON_OK, NULL);
    t_op_init(&cleared, "clear_push_target", &alice_events);
    REQUIRE_CODE(beckon_client_clear_push_target(alice, t_on_result, &cleared), BECKON_OK, NULL);
    CHECK_OP(&cleared, BECKON_OK, NULL);
    mine.provider = 9;
    CHECK_CODE(beckon_client_set_push_target(alice, &mine, NULL, NULL), BECKON_ERROR_INVALID_ARGUMENT,
               "target.provider");

    const char *invitees[] = {"bob", "erin"};
    beckon_invitation_config config = t_invitation(30, "video");
    t_op sent;
    t_op_init(&sent, "send", &alice_events);
    REQUIRE_CODE(beckon_send_invitation(alice, invitees, 2, &config, t_on_send, &sent), BECKON_OK, NULL);
    CHECK_OP(&sent, BECKON_OK, NULL);
    WAIT_EVENTS(&alice_events, BECKON_EVENT_INVITATION_PUSH_RESULT, sent.invitation_id, "bob", -1, 1);
    WAIT_EVENTS(&alice_events, BECKON_EVENT_INVITATION_PUSH_RESULT, sent.invitation_id, "erin", -1, 1);
    const t_event *bob =
        t_find_event(&alice_events, BECKON_EVENT_INVITATION_PUSH_RESULT, sent.invitation_id, "bob", -1);
    REQUIRE(bob != NULL);
    CHECK_STR(bob->device_id, "bob-phone");
    CHECK_INT(bob->push_provider, BECKON_PUSH_PROVIDER_FCM);
    CHECK_INT(bob->push_outcome, BECKON_PUSH_SENT);
    CHECK_STR(bob->push_reason, "");
    const t_event *erin =
        t_find_event(&alice_events, BECKON_EVENT_INVITATION_PUSH_RESULT, sent.invitation_id, "erin", -1);
    REQUIRE(erin != NULL);
    CHECK_STR(erin->device_id, "");
    CHECK_INT(erin->push_provider, 0);
    CHECK_INT(erin->push_outcome, BECKON_PUSH_NO_TARGET);

    CHECK_CODE(beckon_client_free(alice), BECKON_OK, NULL);
    t_op_reset(&sent);
    t_recorder_destroy(&alice_events);
    return t_finish();
}

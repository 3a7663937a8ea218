/*
 * test_abi: the ABI as a program built today sees it, pinned (docs/C_API.md,
 * "Names and versions" and "Config structs and growth").
 *
 *  - Every constant of beckon.h has the value it had when it was published:
 *    error codes and their names, invitee states, event kinds, connection
 *    states and reasons, dispatch modes, log levels, flags, limits, push
 *    providers, APNs environments and push outcomes.
 *  - On 64-bit targets, every struct's size and every field's offset. A change
 *    here breaks every program built against an older header: it needs a new
 *    ABI major version, never a silent edit of this file.
 *  - The ABI version rule: the same major, a library minor at least the
 *    header's (BECKON_ABI_COMPATIBLE), and this library serves this header.
 *  - Config structs: the first version's size is accepted, a smaller one is
 *    not, a larger one only if the fields this library does not know are
 *    zero; `reserved` fields must be 0.
 */
#include <stddef.h>

#include "common.h"

#define HUB "memory://c-abi"

/* Compares a constant's value; names the constant in the failure. */
#define PIN(constant, value) CHECK_INT(constant, value)

/* Compares a field's offset (64-bit targets). */
#define OFFSET(type, field, value) CHECK_INT(offsetof(type, field), value)

static void constants(void) {
    T_SECTION("constants");
    PIN(BECKON_OK, 0);
    PIN(BECKON_ERROR_INVALID_ARGUMENT, 1);
    PIN(BECKON_ERROR_TOO_MANY_INVITEES, 2);
    PIN(BECKON_ERROR_PAYLOAD_TOO_LARGE, 3);
    PIN(BECKON_ERROR_NOT_LOGGED_IN, 4);
    PIN(BECKON_ERROR_AUTH_FAILED, 5);
    PIN(BECKON_ERROR_TOKEN_EXPIRED, 6);
    PIN(BECKON_ERROR_INVITATION_NOT_FOUND, 7);
    PIN(BECKON_ERROR_NOT_PERMITTED, 8);
    PIN(BECKON_ERROR_ALREADY_ANSWERED, 9);
    PIN(BECKON_ERROR_INVITATION_CLOSED, 10);
    PIN(BECKON_ERROR_NETWORK, 11);
    PIN(BECKON_ERROR_REQUEST_TIMEOUT, 12);
    PIN(BECKON_ERROR_RATE_LIMITED, 13);
    PIN(BECKON_ERROR_SHUTDOWN, 14);
    PIN(BECKON_ERROR_SERVER, 15);
    PIN(BECKON_ERROR_INTERNAL, 16);
    PIN(BECKON_ERROR_WOULD_DEADLOCK, 17); /* 2.1 */

    static const char *const names[] = {
        "OK", "INVALID_ARGUMENT", "TOO_MANY_INVITEES", "PAYLOAD_TOO_LARGE", "NOT_LOGGED_IN",
        "AUTH_FAILED", "TOKEN_EXPIRED", "INVITATION_NOT_FOUND", "NOT_PERMITTED",
        "ALREADY_ANSWERED", "INVITATION_CLOSED", "NETWORK", "REQUEST_TIMEOUT", "RATE_LIMITED",
        "SHUTDOWN", "SERVER", "INTERNAL", "WOULD_DEADLOCK",
    };
    for (int code = 0; code < (int)(sizeof names / sizeof names[0]); code++) {
        CHECK_STR(beckon_error_name(code), names[code]);
        const char *description = beckon_error_description(code);
        CHECK_MSG(description != NULL && description[0] != '\0', "no description for %d", code);
    }

    PIN(BECKON_INVITEE_INVITING, 0);
    PIN(BECKON_INVITEE_ACCEPTED, 1);
    PIN(BECKON_INVITEE_REJECTED, 2);
    PIN(BECKON_INVITEE_CANCELLED, 3);
    PIN(BECKON_INVITEE_OFFLINE, 4);
    PIN(BECKON_INVITEE_RECEIVED, 5);
    PIN(BECKON_INVITEE_TIMEOUT, 6);

    PIN(BECKON_EVENT_CONNECTION_STATE_CHANGED, 1);
    PIN(BECKON_EVENT_TOKEN_WILL_EXPIRE, 2);
    PIN(BECKON_EVENT_INVITATION_RECEIVED, 3);
    PIN(BECKON_EVENT_INVITATION_CANCELLED, 4);
    PIN(BECKON_EVENT_INVITATION_ACCEPTED, 5);
    PIN(BECKON_EVENT_INVITATION_REFUSED, 6);
    PIN(BECKON_EVENT_INVITATION_TIMEOUT, 7);
    PIN(BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT, 8);
    PIN(BECKON_EVENT_INVITATION_USER_STATE_CHANGED, 9);
    PIN(BECKON_EVENT_INVITATION_PUSH_RESULT, 10); /* 2.2 */
    CHECK_STR(beckon_event_kind_name(10), "INVITATION_PUSH_RESULT");
    CHECK_STR(beckon_event_kind_name(11), "UNKNOWN");

    PIN(BECKON_CONNECTION_DISCONNECTED, 0);
    PIN(BECKON_CONNECTION_CONNECTING, 1);
    PIN(BECKON_CONNECTION_CONNECTED, 2);
    PIN(BECKON_CONNECTION_RECONNECTING, 3);
    PIN(BECKON_REASON_LOGIN, 0);
    PIN(BECKON_REASON_LOGOUT, 1);
    PIN(BECKON_REASON_NETWORK, 2);
    PIN(BECKON_REASON_KICKED_OUT, 3);
    PIN(BECKON_REASON_TOKEN_EXPIRED, 4);
    PIN(BECKON_REASON_SERVER_SHUTDOWN, 5);

    PIN(BECKON_DISPATCH_THREAD, 0);
    PIN(BECKON_DISPATCH_POLL, 1);
    PIN(BECKON_DISPATCH_POOL, 2);
    PIN(BECKON_LOG_OFF, 0);
    PIN(BECKON_LOG_ERROR, 1);
    PIN(BECKON_LOG_WARN, 2);
    PIN(BECKON_LOG_INFO, 3);
    PIN(BECKON_LOG_DEBUG, 4);
    PIN(BECKON_LOG_TRACE, 5);
    PIN(BECKON_INVITATION_ONLINE_ONLY, 1);
    CHECK_STR(beckon_error_name(18), "UNKNOWN");

    PIN(BECKON_LOG_DIRECT, 0); /* 2.1 */
    PIN(BECKON_LOG_QUEUED, 1); /* 2.1 */
    /* 2.2 */
    PIN(BECKON_PUSH_PROVIDER_APNS, 1);
    PIN(BECKON_PUSH_PROVIDER_APNS_VOIP, 2);
    PIN(BECKON_PUSH_PROVIDER_FCM, 3);
    PIN(BECKON_PUSH_PROVIDER_WEBHOOK, 4);
    PIN(BECKON_APNS_PRODUCTION, 0);
    PIN(BECKON_APNS_SANDBOX, 1);
    PIN(BECKON_PUSH_SENT, 1);
    PIN(BECKON_PUSH_FAILED, 2);
    PIN(BECKON_PUSH_NO_TARGET, 3);
    /* 2.3 */
    PIN(BECKON_HISTORY_ANY, 0);
    PIN(BECKON_HISTORY_SENT, 1);
    PIN(BECKON_HISTORY_RECEIVED, 2);
    static const char *const providers[] = {"UNKNOWN", "APNS", "APNS_VOIP", "FCM", "WEBHOOK", "UNKNOWN"};
    for (int p = 0; p < 6; p++) CHECK_STR(beckon_push_provider_name(p), providers[p]);
    static const char *const outcomes[] = {"UNKNOWN", "SENT", "FAILED", "NO_TARGET", "UNKNOWN"};
    for (int o = 0; o < 5; o++) CHECK_STR(beckon_push_outcome_name(o), outcomes[o]);

    PIN(BECKON_TOKEN_MAX_LEN, 96);
    PIN(BECKON_ID_CAPACITY, 68);
#ifdef BECKON_TEST_HOOKS
    PIN(BECKON_TEST_PANIC_ENTRY, 1);
    PIN(BECKON_TEST_PANIC_TRANSPORT, 2);
    PIN(BECKON_TEST_PANIC_DISPATCH, 3);
#endif
}

static void layouts(void) {
    T_SECTION("struct sizes and field offsets (64-bit)");
#if UINTPTR_MAX > 0xFFFFFFFFu
    CHECK_INT(sizeof(beckon_error), 4);

    CHECK_INT(sizeof(beckon_client_config), 32);
    OFFSET(beckon_client_config, struct_size, 0);
    OFFSET(beckon_client_config, server_url, 8);
    OFFSET(beckon_client_config, device_id, 16);
    OFFSET(beckon_client_config, dispatch_mode, 24);
    OFFSET(beckon_client_config, request_timeout_ms, 28);

    CHECK_INT(sizeof(beckon_hub_config), 24);
    OFFSET(beckon_hub_config, struct_size, 0);
    OFFSET(beckon_hub_config, secret, 8);
    OFFSET(beckon_hub_config, max_invitees, 16);
    OFFSET(beckon_hub_config, retention_ms, 20);

    CHECK_INT(sizeof(beckon_invitation_config), 32);
    OFFSET(beckon_invitation_config, struct_size, 0);
    OFFSET(beckon_invitation_config, timeout_seconds, 4);
    OFFSET(beckon_invitation_config, extended_data, 8);
    OFFSET(beckon_invitation_config, notification, 16);
    OFFSET(beckon_invitation_config, flags, 24);
    OFFSET(beckon_invitation_config, request_timeout_ms, 28); /* 2.0: reserved */

    CHECK_INT(sizeof(beckon_notification_config), 40);
    OFFSET(beckon_notification_config, struct_size, 0);
    OFFSET(beckon_notification_config, title, 8);
    OFFSET(beckon_notification_config, message, 16);
    OFFSET(beckon_notification_config, resource_id, 24);
    OFFSET(beckon_notification_config, payload, 32);

    /* 2.1 */
    CHECK_INT(sizeof(beckon_answer_config), 16);
    OFFSET(beckon_answer_config, struct_size, 0);
    OFFSET(beckon_answer_config, request_timeout_ms, 4);
    OFFSET(beckon_answer_config, extended_data, 8);

    CHECK_INT(sizeof(beckon_cancel_config), 32);
    OFFSET(beckon_cancel_config, struct_size, 0);
    OFFSET(beckon_cancel_config, request_timeout_ms, 4);
    OFFSET(beckon_cancel_config, invitees, 8);
    OFFSET(beckon_cancel_config, invitee_count, 16);
    OFFSET(beckon_cancel_config, extended_data, 24);

    CHECK_INT(sizeof(beckon_log_config), 32);
    OFFSET(beckon_log_config, struct_size, 0);
    OFFSET(beckon_log_config, max_level, 4);
    OFFSET(beckon_log_config, delivery, 8);
    OFFSET(beckon_log_config, reserved, 12);
    OFFSET(beckon_log_config, handler, 16);
    OFFSET(beckon_log_config, user_data, 24);

    CHECK_INT(sizeof(beckon_client_info), 144);
    OFFSET(beckon_client_info, struct_size, 0);
    OFFSET(beckon_client_info, connection_state, 4);
    OFFSET(beckon_client_info, user_id, 8);
    OFFSET(beckon_client_info, device_id, 76);

    CHECK_INT(sizeof(beckon_invitee), 16);
    OFFSET(beckon_invitee, user_id, 0);
    OFFSET(beckon_invitee, state, 8);

    /* Structs the library hands out may grow at the end (minor versions):
     * what is pinned is their first version. */
    CHECK(sizeof(beckon_event) >= 88);
    OFFSET(beckon_event, kind, 0);
    OFFSET(beckon_event, invitation_id, 8);
    OFFSET(beckon_event, inviter, 16);
    OFFSET(beckon_event, user_id, 24);
    OFFSET(beckon_event, state, 32);
    OFFSET(beckon_event, extended_data, 40);
    OFFSET(beckon_event, invitees, 48);
    OFFSET(beckon_event, invitee_count, 56);
    OFFSET(beckon_event, notification, 64);
    /* 2.1: the event's own notification type, laid out as the 2.0 one. */
    CHECK(sizeof(beckon_event_notification) >= 40);
    OFFSET(beckon_event_notification, struct_size, 0);
    OFFSET(beckon_event_notification, title, 8);
    OFFSET(beckon_event_notification, message, 16);
    OFFSET(beckon_event_notification, resource_id, 24);
    OFFSET(beckon_event_notification, payload, 32);
    OFFSET(beckon_event, seconds_left, 72);
    OFFSET(beckon_event, connection_state, 76);
    OFFSET(beckon_event, connection_reason, 80);
    /* 2.2: the push result's fields, after the 2.1 ones (the first two in
     * what was the 2.1 struct's tail padding). */
    CHECK(sizeof(beckon_event) >= 112);
    OFFSET(beckon_event, push_provider, 84);
    OFFSET(beckon_event, push_outcome, 88);
    OFFSET(beckon_event, device_id, 96);
    OFFSET(beckon_event, push_reason, 104);

    /* 2.2 */
    CHECK_INT(sizeof(beckon_push_target), 40);
    OFFSET(beckon_push_target, struct_size, 0);
    OFFSET(beckon_push_target, provider, 4);
    OFFSET(beckon_push_target, token, 8);
    OFFSET(beckon_push_target, topic, 16);
    OFFSET(beckon_push_target, environment, 24);
    OFFSET(beckon_push_target, alert_token, 32);

    /* 2.3 */
    CHECK_INT(sizeof(beckon_invitation_query), 40);
    OFFSET(beckon_invitation_query, struct_size, 0);
    OFFSET(beckon_invitation_query, role, 4);
    OFFSET(beckon_invitation_query, since_ms, 8);
    OFFSET(beckon_invitation_query, until_ms, 16);
    OFFSET(beckon_invitation_query, limit, 24);
    OFFSET(beckon_invitation_query, cursor, 32);
    CHECK_INT(sizeof(beckon_invitation_summary), 56);
    OFFSET(beckon_invitation_summary, invitation_id, 0);
    OFFSET(beckon_invitation_summary, inviter, 8);
    OFFSET(beckon_invitation_summary, invitees, 16);
    OFFSET(beckon_invitation_summary, invitee_count, 24);
    OFFSET(beckon_invitation_summary, created_ms, 32);
    OFFSET(beckon_invitation_summary, ended_ms, 40);
    OFFSET(beckon_invitation_summary, sent_by_server, 48);
    CHECK(sizeof(beckon_invitation_page_result) >= 40);
    OFFSET(beckon_invitation_page_result, error, 0);
    OFFSET(beckon_invitation_page_result, error_message, 8);
    OFFSET(beckon_invitation_page_result, invitations, 16);
    OFFSET(beckon_invitation_page_result, invitation_count, 24);
    OFFSET(beckon_invitation_page_result, next_cursor, 32);

    CHECK(sizeof(beckon_result) >= 16);
    OFFSET(beckon_result, error, 0);
    OFFSET(beckon_result, error_message, 8);

    CHECK(sizeof(beckon_send_result) >= 40);
    OFFSET(beckon_send_result, error, 0);
    OFFSET(beckon_send_result, error_message, 8);
    OFFSET(beckon_send_result, invitation_id, 16);
    OFFSET(beckon_send_result, error_invitees, 24);
    OFFSET(beckon_send_result, error_invitee_count, 32);

    CHECK(sizeof(beckon_cancel_result) >= 32);
    OFFSET(beckon_cancel_result, error, 0);
    OFFSET(beckon_cancel_result, error_message, 8);
    OFFSET(beckon_cancel_result, error_invitees, 16);
    OFFSET(beckon_cancel_result, error_invitee_count, 24);
#else
    t_log("  (32-bit target: sizes and offsets are pinned on 64-bit targets only)");
#endif
}

static void versions(void) {
    T_SECTION("ABI version: the same major, a library minor at least the header's");
    PIN(BECKON_ABI_VERSION_MAJOR, 2);
    PIN(BECKON_ABI_VERSION_MINOR, 3);
    PIN(BECKON_ABI_VERSION, (2u << 16) | 3u);
    CHECK_INT(beckon_abi_version(), BECKON_ABI_VERSION);
    CHECK(BECKON_ABI_COMPATIBLE(beckon_abi_version()));

    const uint32_t major = BECKON_ABI_VERSION_MAJOR, minor = BECKON_ABI_VERSION_MINOR;
    CHECK(BECKON_ABI_COMPATIBLE((major << 16) | minor));
    CHECK_MSG(BECKON_ABI_COMPATIBLE((major << 16) | (minor + 1)), "a newer minor library serves this header");
    CHECK_MSG(!BECKON_ABI_COMPATIBLE(((major + 1) << 16) | minor), "another major is refused");
    CHECK_MSG(!BECKON_ABI_COMPATIBLE(((major - 1) << 16) | 0xFFFFu), "an older major is refused");
    CHECK_MSG(!BECKON_ABI_COMPATIBLE(1u), "the unversioned ABI 1 is refused");

    CHECK_STR(beckon_version(), BECKON_VERSION);
}

static void never_send(void *ud, const beckon_send_result *r) {
    (void)ud;
    T_FAIL("a send that returned an error ran its callback (%s)", beckon_error_name(r->error));
}

static void config_sizes(void) {
    T_SECTION("config structs: first-version sizes, larger structs, reserved fields");
    beckon_client_config cc;
    memset(&cc, 0, sizeof cc);
    cc.struct_size = sizeof cc;
    cc.server_url = HUB;
    beckon_client *client = NULL;
    REQUIRE_CODE(beckon_client_new(&cc, &client), BECKON_OK, NULL);

    const char *bob[] = {"bob"};
    beckon_invitation_config ic;
    memset(&ic, 0, sizeof ic);
    ic.struct_size = sizeof ic;
    ic.timeout_seconds = 30;
    /* Valid as far as the struct goes: what stops it is the login. */
    CHECK_CODE(beckon_send_invitation(client, bob, 1, &ic, never_send, NULL), BECKON_ERROR_NOT_LOGGED_IN, NULL);

    /* 2.1: the field 2.0 reserved is the request timeout; 2.0 programs set 0. */
    ic.request_timeout_ms = 1500;
    CHECK_CODE(beckon_send_invitation(client, bob, 1, &ic, never_send, NULL), BECKON_ERROR_NOT_LOGGED_IN, NULL);
    ic.request_timeout_ms = 0;

    ic.struct_size = (uint32_t)(offsetof(beckon_invitation_config, request_timeout_ms) + sizeof(uint32_t) - 1);
    CHECK_CODE(beckon_send_invitation(client, bob, 1, &ic, never_send, NULL), BECKON_ERROR_INVALID_ARGUMENT,
               "struct_size");
    ic.struct_size = sizeof ic;

    /* The 2.1 configs: NULL means defaults; a short struct_size is refused. */
    beckon_answer_config ac;
    memset(&ac, 0, sizeof ac);
    ac.struct_size = sizeof ac - 1;
    CHECK_CODE(beckon_accept_invitation_ex(client, "0123456789abcdef0123456789abcdef", &ac, NULL, NULL),
               BECKON_ERROR_INVALID_ARGUMENT, "config.struct_size");
    beckon_cancel_config cancel;
    memset(&cancel, 0, sizeof cancel);
    cancel.struct_size = 4;
    CHECK_CODE(beckon_cancel_invitation_ex(client, "0123456789abcdef0123456789abcdef", &cancel, NULL, NULL),
               BECKON_ERROR_INVALID_ARGUMENT, "config.struct_size");

    beckon_log_config lc;
    memset(&lc, 0, sizeof lc);
    lc.struct_size = sizeof lc;
    lc.reserved = 1;
    CHECK_CODE(beckon_set_log_config(&lc), BECKON_ERROR_INVALID_ARGUMENT, "config.reserved");
    lc.reserved = 0;
    lc.delivery = 2;
    CHECK_CODE(beckon_set_log_config(&lc), BECKON_ERROR_INVALID_ARGUMENT, "config.delivery");
    CHECK_CODE(beckon_set_log_config(NULL), BECKON_ERROR_INVALID_ARGUMENT, "config");

    /* A struct from a newer header: fine while its new fields are zero. */
    struct {
        beckon_invitation_config config;
        uint64_t later_field;
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.config.struct_size = sizeof newer;
    newer.config.timeout_seconds = 30;
    CHECK_CODE(beckon_send_invitation(client, bob, 1, &newer.config, never_send, NULL), BECKON_ERROR_NOT_LOGGED_IN,
               NULL);
    newer.later_field = 7;
    CHECK_CODE(beckon_send_invitation(client, bob, 1, &newer.config, never_send, NULL),
               BECKON_ERROR_INVALID_ARGUMENT, "does not know");

    beckon_client_free(client);
}

static void client_info(void) {
    T_SECTION("beckon_client_get_info: connection state, user, device id");
    beckon_client *random_device = t_client_new(HUB, NULL, BECKON_DISPATCH_THREAD);
    beckon_client *client = t_client_new(HUB, "alice-phone", BECKON_DISPATCH_THREAD);
    beckon_client_info info;
    memset(&info, 0xAB, sizeof info);
    info.struct_size = sizeof info;
    CHECK_CODE(beckon_client_get_info(client, &info), BECKON_OK, NULL);
    CHECK_INT(info.connection_state, BECKON_CONNECTION_DISCONNECTED);
    CHECK_STR(info.user_id, "");
    CHECK_STR(info.device_id, "alice-phone");

    CHECK_CODE(beckon_client_get_info(random_device, &info), BECKON_OK, NULL);
    CHECK_MSG(strlen(info.device_id) > 0 && strlen(info.device_id) <= 64, "a random device id: \"%s\"",
              info.device_id);

    CHECK_CODE(beckon_client_get_info(NULL, &info), BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_CODE(beckon_client_get_info(client, NULL), BECKON_ERROR_INVALID_ARGUMENT, "out_info");
    info.struct_size = (uint32_t)offsetof(beckon_client_info, device_id);
    CHECK_CODE(beckon_client_get_info(client, &info), BECKON_ERROR_INVALID_ARGUMENT, "out_info.struct_size");

    t_recorder events;
    t_recorder_init(&events, "alice", 64);
    REQUIRE_CODE(beckon_client_set_event_handler(client, t_record_event, &events), BECKON_OK, NULL);
    t_login(client, "alice", NULL, &events);
    WAIT_EVENTS(&events, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1, 2);
    info.struct_size = sizeof info;
    CHECK_CODE(beckon_client_get_info(client, &info), BECKON_OK, NULL);
    CHECK_INT(info.connection_state, BECKON_CONNECTION_CONNECTED);
    CHECK_STR(info.user_id, "alice");
    CHECK_STR(info.device_id, "alice-phone");

    t_op out;
    t_op_init(&out, "logout", &events);
    REQUIRE_CODE(beckon_client_logout(client, t_on_result, &out), BECKON_OK, NULL);
    CHECK_OP(&out, BECKON_OK, NULL);
    WAIT_EVENTS(&events, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1, 3);
    CHECK_CODE(beckon_client_get_info(client, &info), BECKON_OK, NULL);
    CHECK_INT(info.connection_state, BECKON_CONNECTION_DISCONNECTED);
    CHECK_STR(info.user_id, "");

    beckon_client_free(client);
    beckon_client_free(random_device);
    t_recorder_destroy(&events);
}

int main(void) {
    t_start("test_abi");
    constants();
    layouts();
    versions();
    config_sizes();
    client_info();
    return t_finish();
}

/*
 * test_push: push targets and push results through the C ABI (2.2).
 *
 *  - beckon_client_set_push_target refuses every bad input at once with the
 *    right code and a message naming `target.<field>` (NULL, struct_size,
 *    invalid UTF-8, unknown provider and environment values, malformed and
 *    over-long fields, fields of another provider), and then never runs its
 *    callback; clear likewise for what it can get wrong.
 *  - A plain memory hub pushes through nothing: a valid target is refused
 *    in the callback (INVALID_ARGUMENT, naming the provider).
 *  - A memory hub with the scripted outlet of the test hooks: set and clear
 *    succeed; an invitee with no device online is rung by push and the
 *    inviter gets one INVITATION_PUSH_RESULT per pushed device (SENT, or
 *    FAILED with the provider's reason) and one NO_TARGET per offline
 *    invitee without a target, each once, with every field; a token the
 *    provider calls invalid is forgotten (the next send: NO_TARGET); an
 *    explicit logout forgets the device's target.
 *
 * Every callback runs exactly once (t_op); the unexpected ones are counted.
 */
#include "common.h"

#define HUB "memory://c-push"
#define PUSH_HUB_NAME "c-push-outlet"
#define PUSH_HUB "memory://" PUSH_HUB_NAME

static atomic_int unexpected_callbacks;

static void never_result(void *ud, const beckon_result *r) {
    atomic_fetch_add(&unexpected_callbacks, 1);
    T_FAIL("callback of a call that returned an error ran: %s (%s: %s)", (const char *)ud,
           beckon_error_name(r->error), r->error_message);
}

/* A 64-hex-digit APNs token starting with `prefix` (static storage per slot). */
static const char *apns_token(int slot, const char *prefix) {
    static char tokens[4][65];
    memset(tokens[slot], '0', 64);
    tokens[slot][64] = '\0';
    memcpy(tokens[slot], prefix, strlen(prefix));
    return tokens[slot];
}

static beckon_push_target target_of(int32_t provider, const char *token) {
    beckon_push_target t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    t.provider = provider;
    t.token = token;
    return t;
}

/* Sets `t` on `client`, expecting `code` at once (never a callback). */
#define REFUSED(client, t, code, field)                                                     \
    CHECK_CODE(beckon_client_set_push_target((client), (t), never_result, "set_push_target"), \
               (code), (field))

static void names(void) {
    T_SECTION("constants and their names");
    CHECK_STR(beckon_event_kind_name(BECKON_EVENT_INVITATION_PUSH_RESULT), "INVITATION_PUSH_RESULT");
    CHECK_STR(beckon_push_provider_name(BECKON_PUSH_PROVIDER_APNS), "APNS");
    CHECK_STR(beckon_push_provider_name(BECKON_PUSH_PROVIDER_APNS_VOIP), "APNS_VOIP");
    CHECK_STR(beckon_push_provider_name(BECKON_PUSH_PROVIDER_FCM), "FCM");
    CHECK_STR(beckon_push_provider_name(BECKON_PUSH_PROVIDER_WEBHOOK), "WEBHOOK");
    CHECK_STR(beckon_push_provider_name(0), "UNKNOWN");
    CHECK_STR(beckon_push_provider_name(5), "UNKNOWN");
    CHECK_STR(beckon_push_outcome_name(BECKON_PUSH_SENT), "SENT");
    CHECK_STR(beckon_push_outcome_name(BECKON_PUSH_FAILED), "FAILED");
    CHECK_STR(beckon_push_outcome_name(BECKON_PUSH_NO_TARGET), "NO_TARGET");
    CHECK_STR(beckon_push_outcome_name(0), "UNKNOWN");
    CHECK_STR(beckon_push_outcome_name(-1), "UNKNOWN");
}

static void bad_input(void) {
    T_SECTION("bad targets are refused at once, naming target.<field>");
    t_recorder events;
    t_recorder_init(&events, "alice", 64);
    beckon_client *alice = t_client_with_recorder(HUB, "alice-phone", &events);
    beckon_push_target t = target_of(BECKON_PUSH_PROVIDER_FCM, "fcm-token");

    /* Before login: the target is checked first, then the session. */
    REFUSED(alice, &t, BECKON_ERROR_NOT_LOGGED_IN, NULL);
    CHECK_CODE(beckon_client_clear_push_target(alice, never_result, "clear"), BECKON_ERROR_NOT_LOGGED_IN, NULL);
    CHECK_CODE(beckon_client_clear_push_target(NULL, never_result, "clear"), BECKON_ERROR_INVALID_ARGUMENT,
               "client");
    t_login(alice, "alice", NULL, &events);

    REFUSED(NULL, &t, BECKON_ERROR_INVALID_ARGUMENT, "client");
    REFUSED(alice, NULL, BECKON_ERROR_INVALID_ARGUMENT, "target");

    t.struct_size = 0;
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.struct_size");
    t.struct_size = sizeof t - 1;
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.struct_size");
    t.struct_size = 1u << 20;
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.struct_size");

    /* A struct from a newer header: refused only if it sets what this
     * library does not know. */
    struct {
        beckon_push_target target;
        uint64_t later_field;
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.target = target_of(BECKON_PUSH_PROVIDER_FCM, "fcm-token");
    newer.target.struct_size = sizeof newer;
    newer.later_field = 1;
    REFUSED(alice, &newer.target, BECKON_ERROR_INVALID_ARGUMENT, "does not know");

    int32_t bad_providers[] = {0, -1, 5, 1000};
    for (size_t i = 0; i < sizeof bad_providers / sizeof bad_providers[0]; i++) {
        t = target_of(bad_providers[i], "fcm-token");
        REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.provider");
    }
    int32_t bad_environments[] = {-1, 2, 77};
    for (size_t i = 0; i < sizeof bad_environments / sizeof bad_environments[0]; i++) {
        t = target_of(BECKON_PUSH_PROVIDER_APNS, apns_token(0, "ab"));
        t.environment = bad_environments[i];
        REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.environment");
    }

    /* The token. */
    t = target_of(BECKON_PUSH_PROVIDER_FCM, NULL);
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.token");
    t.token = "";
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.token");
    t.token = "ab\xff";
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.token: not valid UTF-8 (at byte 2)");
    t.token = "two words";
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.token");
    t.token = "caf\xc3\xa9"; /* valid UTF-8, not ASCII */
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.token");
    char *long_token = t_repeat('x', 4097);
    t.token = long_token;
    REFUSED(alice, &t, BECKON_ERROR_PAYLOAD_TOO_LARGE, "target.token");
    long_token[4096] = '\0'; /* 4096 bytes: the limit, accepted (then refused by the hub) */
    t_op at_limit;
    t_op_init(&at_limit, "set_push_target with a 4096-byte token", &events);
    REQUIRE_CODE(beckon_client_set_push_target(alice, &t, t_on_result, &at_limit), BECKON_OK, NULL);
    CHECK_OP(&at_limit, BECKON_ERROR_INVALID_ARGUMENT, "does not push through fcm");
    free(long_token);
    t = target_of(BECKON_PUSH_PROVIDER_APNS, "not-hex-at-all");
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.token");
    t.token = "abc"; /* odd and short */
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.token");
    char *long_hex = t_repeat('a', 202);
    t.token = long_hex;
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.token");
    free(long_hex);

    /* The topic. */
    t = target_of(BECKON_PUSH_PROVIDER_APNS_VOIP, apns_token(0, "ab"));
    t.topic = "not a bundle id";
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.topic");
    t.topic = "com.example.\xc3";
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.topic: not valid UTF-8");
    char *long_topic = t_repeat('a', 256);
    t.topic = long_topic;
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.topic");
    free(long_topic);
    t = target_of(BECKON_PUSH_PROVIDER_FCM, "fcm-token");
    t.topic = "com.example.app";
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.topic");
    t = target_of(BECKON_PUSH_PROVIDER_WEBHOOK, "device-7");
    t.topic = "com.example.app";
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.topic");

    /* The environment belongs to APNs. */
    t = target_of(BECKON_PUSH_PROVIDER_FCM, "fcm-token");
    t.environment = BECKON_APNS_SANDBOX;
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.environment");

    /* The alert token belongs to APNS_VOIP. */
    t = target_of(BECKON_PUSH_PROVIDER_APNS, apns_token(0, "ab"));
    t.alert_token = apns_token(1, "cd");
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.alert_token");
    t = target_of(BECKON_PUSH_PROVIDER_FCM, "fcm-token");
    t.alert_token = apns_token(1, "cd");
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.alert_token");
    t = target_of(BECKON_PUSH_PROVIDER_APNS_VOIP, apns_token(0, "ab"));
    t.alert_token = "zz";
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.alert_token");
    t.alert_token = "\xff";
    REFUSED(alice, &t, BECKON_ERROR_INVALID_ARGUMENT, "target.alert_token: not valid UTF-8");

    T_SECTION("a memory hub pushes through nothing: refused in the callback");
    int32_t providers[] = {BECKON_PUSH_PROVIDER_APNS, BECKON_PUSH_PROVIDER_APNS_VOIP, BECKON_PUSH_PROVIDER_FCM,
                           BECKON_PUSH_PROVIDER_WEBHOOK};
    const char *provider_names[] = {"apns", "apns_voip", "fcm", "webhook"};
    for (int i = 0; i < 4; i++) {
        /* Empty strings are no topic and no alert token, as NULL. */
        t = target_of(providers[i], i < 2 ? apns_token(0, "ab") : "token-1");
        t.topic = "";
        t.alert_token = "";
        char expected[64];
        snprintf(expected, sizeof expected, "does not push through %s", provider_names[i]);
        t_op op;
        t_op_init(&op, "set_push_target on a plain memory hub", &events);
        REQUIRE_CODE(beckon_client_set_push_target(alice, &t, t_on_result, &op), BECKON_OK, NULL);
        CHECK_OP(&op, BECKON_ERROR_INVALID_ARGUMENT, expected);
    }
    /* Clearing what was never set is fine; a NULL callback is allowed. */
    t_op cleared;
    t_op_init(&cleared, "clear_push_target", &events);
    REQUIRE_CODE(beckon_client_clear_push_target(alice, t_on_result, &cleared), BECKON_OK, NULL);
    CHECK_OP(&cleared, BECKON_OK, NULL);
    CHECK_CODE(beckon_client_clear_push_target(alice, NULL, NULL), BECKON_OK, NULL);

    CHECK_CODE(beckon_client_free(alice), BECKON_OK, NULL);
    t_recorder_destroy(&events);
}

/* The push result about `user`'s `device` ("" for none) for `id`, or NULL. */
static const t_event *push_result(t_recorder *rec, const char *id, const char *user, const char *device) {
    const t_event *found = NULL;
    pthread_mutex_lock(&rec->mutex);
    for (size_t i = 0; i < rec->count && found == NULL; i++) {
        const t_event *e = &rec->events[i];
        if (e->kind == BECKON_EVENT_INVITATION_PUSH_RESULT && strcmp(e->invitation_id, id) == 0 &&
            strcmp(e->user_id, user) == 0 && strcmp(e->device_id, device) == 0)
            found = e;
    }
    pthread_mutex_unlock(&rec->mutex);
    return found;
}

#define CHECK_RESULT(rec, id, user, device, provider, outcome, reason)                                  \
    do {                                                                                                \
        const t_event *r_ = push_result((rec), (id), (user), (device));                                \
        CHECK_MSG(r_ != NULL, "no push result for %s/%s", (user), (device));                           \
        if (r_ != NULL) {                                                                               \
            CHECK_INT(r_->push_provider, (provider));                                                   \
            CHECK_INT(r_->push_outcome, (outcome));                                                     \
            CHECK_STR(r_->push_reason, (reason));                                                       \
            CHECK_STR(r_->inviter, "");                                                                 \
            CHECK_STR(r_->extended_data, "");                                                           \
            CHECK(r_->invitees_was_null && r_->invitee_count == 0);                                     \
            CHECK(!r_->has_notification);                                                               \
        }                                                                                               \
    } while (0)

static void send_to(beckon_client *client, t_recorder *rec, const char *const *invitees, size_t n, t_op *sent) {
    beckon_invitation_config config = t_invitation(30, "call");
    t_op_init(sent, "send", rec);
    REQUIRE_CODE(beckon_send_invitation(client, invitees, n, &config, t_on_send, sent), BECKON_OK, NULL);
    CHECK_OP(sent, BECKON_OK, NULL);
}

static void push_results(void) {
    T_SECTION("a memory hub with the scripted outlet (test hooks)");
    REQUIRE_CODE(beckon_test_memory_hub_create_with_push(PUSH_HUB_NAME), BECKON_OK, NULL);
    CHECK_CODE(beckon_test_memory_hub_create_with_push(PUSH_HUB_NAME), BECKON_ERROR_INVALID_ARGUMENT, "exists");
    CHECK_CODE(beckon_test_memory_hub_create_with_push(NULL), BECKON_ERROR_INVALID_ARGUMENT, "name");

    /* Devices whose apps are gone: reachable by push only. */
    beckon_push_target voip = target_of(BECKON_PUSH_PROVIDER_APNS_VOIP, apns_token(0, "ab"));
    voip.topic = "com.example.calls";
    voip.environment = BECKON_APNS_SANDBOX;
    voip.alert_token = apns_token(1, "cd");
    REQUIRE_CODE(beckon_test_offline_push_target(PUSH_HUB_NAME, "bob", "bob-phone", &voip), BECKON_OK, NULL);
    beckon_push_target failing = target_of(BECKON_PUSH_PROVIDER_FCM, "fail-fcm-token");
    REQUIRE_CODE(beckon_test_offline_push_target(PUSH_HUB_NAME, "bob", "bob-tablet", &failing), BECKON_OK, NULL);
    beckon_push_target invalid = target_of(BECKON_PUSH_PROVIDER_APNS, apns_token(2, "bad"));
    REQUIRE_CODE(beckon_test_offline_push_target(PUSH_HUB_NAME, "dave", "dave-phone", &invalid), BECKON_OK, NULL);
    CHECK_CODE(beckon_test_offline_push_target(PUSH_HUB_NAME, "dave", "dave-phone", NULL),
               BECKON_ERROR_INVALID_ARGUMENT, "target");
    CHECK_CODE(beckon_test_offline_push_target(PUSH_HUB_NAME, "not a user", "x", &voip),
               BECKON_ERROR_INVALID_ARGUMENT, "user_id");

    t_recorder alice_events, carol_events;
    t_recorder_init(&alice_events, "alice", 128);
    t_recorder_init(&carol_events, "carol", 64);
    beckon_client *alice = t_client_with_recorder(PUSH_HUB, "alice-phone", &alice_events);
    beckon_client *carol = t_client_with_recorder(PUSH_HUB, "carol-phone", &carol_events);
    t_login(alice, "alice", NULL, &alice_events);
    t_login(carol, "carol", NULL, &carol_events);

    T_SECTION("set and clear succeed where the hub pushes");
    beckon_push_target carols = target_of(BECKON_PUSH_PROVIDER_WEBHOOK, "carol-device-1");
    t_op set, cleared, set_again;
    t_op_init(&set, "set_push_target", &carol_events);
    REQUIRE_CODE(beckon_client_set_push_target(carol, &carols, t_on_result, &set), BECKON_OK, NULL);
    CHECK_OP(&set, BECKON_OK, NULL);
    t_op_init(&cleared, "clear_push_target", &carol_events);
    REQUIRE_CODE(beckon_client_clear_push_target(carol, t_on_result, &cleared), BECKON_OK, NULL);
    CHECK_OP(&cleared, BECKON_OK, NULL);
    t_op_init(&set_again, "set_push_target again", &carol_events);
    REQUIRE_CODE(beckon_client_set_push_target(carol, &carols, t_on_result, &set_again), BECKON_OK, NULL);
    CHECK_OP(&set_again, BECKON_OK, NULL);

    T_SECTION("the inviter gets one push result per pushed device, and NO_TARGET per invitee without one");
    const char *invitees[] = {"bob", "carol", "dave", "erin"};
    t_op sent;
    send_to(alice, &alice_events, invitees, 4, &sent);
    WAIT_EVENTS(&alice_events, BECKON_EVENT_INVITATION_PUSH_RESULT, sent.invitation_id, NULL, -1, 4);
    CHECK_RESULT(&alice_events, sent.invitation_id, "bob", "bob-phone", BECKON_PUSH_PROVIDER_APNS_VOIP,
                 BECKON_PUSH_SENT, "");
    CHECK_RESULT(&alice_events, sent.invitation_id, "bob", "bob-tablet", BECKON_PUSH_PROVIDER_FCM,
                 BECKON_PUSH_FAILED, "ServiceUnavailable");
    CHECK_RESULT(&alice_events, sent.invitation_id, "dave", "dave-phone", BECKON_PUSH_PROVIDER_APNS,
                 BECKON_PUSH_FAILED, "BadDeviceToken");
    CHECK_RESULT(&alice_events, sent.invitation_id, "erin", "", 0, BECKON_PUSH_NO_TARGET, "");
    /* carol is online: she rings, and is not pushed. */
    WAIT_EVENTS(&carol_events, BECKON_EVENT_INVITATION_RECEIVED, sent.invitation_id, NULL, -1, 1);
    CHECK_INT(t_count_events(&carol_events, BECKON_EVENT_INVITATION_PUSH_RESULT, NULL, NULL, -1), 0);

    T_SECTION("a token the provider calls invalid is forgotten: the next send finds no target");
    const char *just_dave[] = {"dave"};
    t_op again;
    send_to(alice, &alice_events, just_dave, 1, &again);
    WAIT_EVENTS(&alice_events, BECKON_EVENT_INVITATION_PUSH_RESULT, again.invitation_id, NULL, -1, 1);
    CHECK_RESULT(&alice_events, again.invitation_id, "dave", "", 0, BECKON_PUSH_NO_TARGET, "");
    /* Each result came once. */
    CHECK_INT(t_count_events(&alice_events, BECKON_EVENT_INVITATION_PUSH_RESULT, sent.invitation_id, NULL, -1), 4);
    CHECK_INT(t_count_events(&alice_events, BECKON_EVENT_INVITATION_PUSH_RESULT, again.invitation_id, NULL, -1),
              1);

    T_SECTION("an explicit logout forgets the device's target");
    t_op out;
    t_op_init(&out, "carol logout", &carol_events);
    REQUIRE_CODE(beckon_client_logout(carol, t_on_result, &out), BECKON_OK, NULL);
    CHECK_OP(&out, BECKON_OK, NULL);
    const char *just_carol[] = {"carol"};
    t_op third;
    send_to(alice, &alice_events, just_carol, 1, &third);
    WAIT_EVENTS(&alice_events, BECKON_EVENT_INVITATION_PUSH_RESULT, third.invitation_id, NULL, -1, 1);
    CHECK_RESULT(&alice_events, third.invitation_id, "carol", "", 0, BECKON_PUSH_NO_TARGET, "");

    T_SECTION("cancel after push results");
    t_op cancelled;
    t_op_init(&cancelled, "cancel", &alice_events);
    REQUIRE_CODE(beckon_cancel_invitation(alice, sent.invitation_id, NULL, 0, NULL, t_on_cancel, &cancelled),
                 BECKON_OK, NULL);
    CHECK_OP(&cancelled, BECKON_OK, NULL);
    /* Stop pushes are not reported to the inviter. */
    CHECK_INT(t_count_events(&alice_events, BECKON_EVENT_INVITATION_PUSH_RESULT, sent.invitation_id, NULL, -1), 4);

    CHECK_CODE(beckon_client_free(alice), BECKON_OK, NULL);
    CHECK_CODE(beckon_client_free(carol), BECKON_OK, NULL);
    t_op_reset(&sent);
    t_op_reset(&again);
    t_op_reset(&third);
    t_op_reset(&cancelled);
    t_recorder_destroy(&alice_events);
    t_recorder_destroy(&carol_events);
}

int main(void) {
    t_start("test_push");
    names();
    bad_input();
    push_results();
    CHECK_INT(atomic_load(&unexpected_callbacks), 0);
    return t_finish();
}

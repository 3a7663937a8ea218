/*
 * test_api_errors: every bad input of the error table that can occur on a
 * memory:// hub is answered by the right code and a non-empty message naming
 * the field; errors the hub decides arrive in the callback; a call that returns
 * an error never runs its callback (counted at the end). Also the network
 * errors that need no server: ws:// and wss:// URLs are accepted, a login to a
 * closed port fails with NETWORK and one to a port that never answers with
 * REQUEST_TIMEOUT, each in its callback, exactly once.
 */
#include "common.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define HUB "memory://c-api-errors"
#define SECURE_HUB_NAME "c-api-errors-secure"
#define SECURE_HUB "memory://" SECURE_HUB_NAME
#define SECRET "s3cret-for-c-tests"
#define UNKNOWN_ID "0123456789abcdef0123456789abcdef"

/* ---- callbacks that must never run ------------------------------------------ */

static atomic_int unexpected_callbacks;

static void never_result(void *ud, const beckon_result *r) {
    atomic_fetch_add(&unexpected_callbacks, 1);
    T_FAIL("callback of a call that returned an error ran: %s (%s: %s)", (const char *)ud,
           beckon_error_name(r->error), r->error_message);
}

static void never_send(void *ud, const beckon_send_result *r) {
    atomic_fetch_add(&unexpected_callbacks, 1);
    T_FAIL("send callback of a call that returned an error ran: %s (%s: %s)", (const char *)ud,
           beckon_error_name(r->error), r->error_message);
}

static void never_cancel(void *ud, const beckon_cancel_result *r) {
    atomic_fetch_add(&unexpected_callbacks, 1);
    T_FAIL("cancel callback of a call that returned an error ran: %s (%s: %s)", (const char *)ud,
           beckon_error_name(r->error), r->error_message);
}

static void never_event(void *ud, const beckon_event *e) {
    (void)ud;
    (void)e;
}

static void never_log(void *ud, int32_t level, const char *tag, const char *sub, const char *msg) {
    (void)ud;
    (void)level;
    (void)tag;
    (void)sub;
    (void)msg;
}

/* Operations that return OK: each gets a t_op, all counted at the end. */
#define MAX_OPS 256
static t_op ops[MAX_OPS];
static int op_count;

static t_op *new_op(const char *what, t_recorder *rec) {
    REQUIRE(op_count < MAX_OPS);
    t_op *op = &ops[op_count++];
    t_op_init(op, what, rec);
    return op;
}

static beckon_client_config client_config(const char *url) {
    beckon_client_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.server_url = url;
    return c;
}

/* ---- sections ------------------------------------------------------------------ */

static void names_and_versions(void) {
    T_SECTION("error, state and event-kind names; versions");
    static const char *const error_names[] = {
        "OK", "INVALID_ARGUMENT", "TOO_MANY_INVITEES", "PAYLOAD_TOO_LARGE", "NOT_LOGGED_IN",
        "AUTH_FAILED", "TOKEN_EXPIRED", "INVITATION_NOT_FOUND", "NOT_PERMITTED",
        "ALREADY_ANSWERED", "INVITATION_CLOSED", "NETWORK", "REQUEST_TIMEOUT", "RATE_LIMITED",
        "SHUTDOWN", "SERVER", "INTERNAL"};
    for (int code = 0; code <= 16; code++) {
        CHECK_STR(beckon_error_name(code), error_names[code]);
        const char *d = beckon_error_description(code);
        CHECK_MSG(d != NULL && d[0] != '\0' && strcmp(d, "unknown error code") != 0,
                  "beckon_error_description(%d) = \"%s\"", code, d ? d : "(NULL)");
    }
    /* the macros agree with the numbering */
    CHECK_INT(BECKON_ERROR_INVALID_ARGUMENT, 1);
    CHECK_INT(BECKON_ERROR_INTERNAL, 16);
    CHECK_INT(BECKON_ERROR_SHUTDOWN, 14);
    const int unknown_codes[] = {-1, 18, 100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown_codes / sizeof unknown_codes[0]; i++) {
        CHECK_STR(beckon_error_name(unknown_codes[i]), "UNKNOWN");
        CHECK_STR(beckon_error_description(unknown_codes[i]), "unknown error code");
    }
    static const char *const states[] = {"INVITING", "ACCEPTED", "REJECTED", "CANCELLED",
                                         "OFFLINE", "RECEIVED", "TIMEOUT"};
    for (int s = 0; s <= 6; s++) CHECK_STR(beckon_invitee_state_name(s), states[s]);
    CHECK_STR(beckon_invitee_state_name(-1), "UNKNOWN");
    CHECK_STR(beckon_invitee_state_name(7), "UNKNOWN"); /* reserved (QUIT) */
    CHECK_STR(beckon_invitee_state_name(9), "UNKNOWN");
    static const char *const kinds[] = {NULL,
                                        "CONNECTION_STATE_CHANGED",
                                        "TOKEN_WILL_EXPIRE",
                                        "INVITATION_RECEIVED",
                                        "INVITATION_CANCELLED",
                                        "INVITATION_ACCEPTED",
                                        "INVITATION_REFUSED",
                                        "INVITATION_TIMEOUT",
                                        "INVITATION_RESPONSE_TIMEOUT",
                                        "INVITATION_USER_STATE_CHANGED"};
    for (int k = 1; k <= 9; k++) CHECK_STR(beckon_event_kind_name(k), kinds[k]);
    CHECK_STR(beckon_event_kind_name(10), "INVITATION_PUSH_RESULT"); /* 2.2 */
    CHECK_STR(beckon_event_kind_name(0), "UNKNOWN");
    CHECK_STR(beckon_event_kind_name(11), "UNKNOWN");
    CHECK_STR(beckon_event_kind_name(-3), "UNKNOWN");
    /* static storage: the same pointer every time */
    CHECK(beckon_error_name(8) == beckon_error_name(8));
    CHECK_STR(beckon_version(), BECKON_VERSION);
    CHECK_INT(beckon_abi_version(), BECKON_ABI_VERSION);
    t_log("  names, descriptions and versions checked");
}

static void client_new_errors(void) {
    T_SECTION("beckon_client_new: config, struct_size, url, device id, dispatch mode");
    beckon_client_config c = client_config(HUB);
    beckon_client *client = (beckon_client *)&c; /* a non-NULL sentinel */

    CHECK_CODE(beckon_client_new(NULL, &client), BECKON_ERROR_INVALID_ARGUMENT, "config");
    CHECK_MSG(client == NULL, "out_client not set to NULL on error (NULL config)");
    CHECK_CODE(beckon_client_new(&c, NULL), BECKON_ERROR_INVALID_ARGUMENT, "out_client");

    uint32_t bad_sizes[] = {0, 4, (uint32_t)sizeof c - 1, UINT32_MAX, 1u << 20};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        c.struct_size = bad_sizes[i];
        client = (beckon_client *)&c;
        t_log("  struct_size %u:", bad_sizes[i]);
        CHECK_CODE(beckon_client_new(&c, &client), BECKON_ERROR_INVALID_ARGUMENT, "struct_size");
        CHECK_MSG(client == NULL, "out_client not set to NULL on error (struct_size %u)", bad_sizes[i]);
    }

    /* A newer caller's bigger struct: accepted if the unknown tail is zero. */
    struct {
        beckon_client_config config;
        unsigned char tail[24];
    } bigger;
    memset(&bigger, 0, sizeof bigger);
    bigger.config = client_config(HUB);
    bigger.config.struct_size = sizeof bigger;
    client = NULL;
    CHECK_CODE(beckon_client_new(&bigger.config, &client), BECKON_OK, NULL);
    CHECK(client != NULL);
    beckon_client_free(client);
    bigger.tail[5] = 0x5a; /* a field this library does not know, set */
    client = (beckon_client *)&c;
    CHECK_CODE(beckon_client_new(&bigger.config, &client), BECKON_ERROR_INVALID_ARGUMENT, "config");
    CHECK_MSG(client == NULL, "out_client not set to NULL on error (unknown tail)");

    c = client_config(NULL);
    CHECK_CODE(beckon_client_new(&c, &client), BECKON_ERROR_INVALID_ARGUMENT, "server_url");
    const char *bad_urls[] = {"", "ws://", "wss://", "ws://:7600", "ws:// space", "http://x",
                              "ftp://x", "WS//x", "memory:/x", "memory://",
                              "memory://bad name", "memory://a/b",
                              "memory://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 65 */,
                              "memory://\xff\xfe"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        c = client_config(bad_urls[i]);
        CHECK_CODE(beckon_client_new(&c, &client), BECKON_ERROR_INVALID_ARGUMENT, "server_url");
    }
    c = client_config("memory://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 64 */);
    client = NULL;
    CHECK_CODE(beckon_client_new(&c, &client), BECKON_OK, NULL);
    beckon_client_free(client);

    const char *bad_devices[] = {"", "has space", "\xff\xfe", "slash/no",
                                 "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd" /* 65 */};
    for (size_t i = 0; i < sizeof bad_devices / sizeof bad_devices[0]; i++) {
        c = client_config(HUB);
        c.device_id = bad_devices[i];
        int rc = beckon_client_new(&c, &client);
        if (i == 0 && rc == BECKON_OK) {
            /* "" read as "no device id" (random) is a reasonable reading too */
            t_log("  note: device_id \"\" accepted (treated as NULL: a random id)");
            beckon_client_free(client);
            continue;
        }
        t_check_code(__FILE__, __LINE__, "beckon_client_new(device_id bad)", rc,
                     BECKON_ERROR_INVALID_ARGUMENT, "device_id");
    }

    const int32_t bad_modes[] = {3, -1, 100, INT32_MIN}; /* 0, 1, 2: thread, poll, pool */
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        c = client_config(HUB);
        c.dispatch_mode = bad_modes[i];
        CHECK_CODE(beckon_client_new(&c, &client), BECKON_ERROR_INVALID_ARGUMENT, "dispatch_mode");
    }

    /* NULL handle checks on the other client functions */
    CHECK_CODE(beckon_client_set_event_handler(NULL, never_event, NULL),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_CODE(beckon_client_login(NULL, "alice", NULL, never_result, "login NULL client"),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_CODE(beckon_client_logout(NULL, never_result, "logout NULL client"),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_CODE(beckon_client_renew_token(NULL, "x", never_result, "renew NULL client"),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    const char *one[] = {"bob"};
    beckon_invitation_config inv = t_invitation(10, NULL);
    CHECK_CODE(beckon_send_invitation(NULL, one, 1, &inv, never_send, "send NULL client"),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_CODE(beckon_cancel_invitation(NULL, UNKNOWN_ID, NULL, 0, NULL, never_cancel, "cancel NULL"),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_CODE(beckon_accept_invitation(NULL, UNKNOWN_ID, NULL, never_result, "accept NULL"),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_CODE(beckon_refuse_invitation(NULL, UNKNOWN_ID, NULL, never_result, "refuse NULL"),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_CODE(beckon_client_poll(NULL, 0, NULL), BECKON_ERROR_INVALID_ARGUMENT, "client");

    t_log("  beckon_client_free(NULL) is a no-op");
    beckon_client_free(NULL);

    /* success resets the last error message */
    c = client_config(HUB);
    client = NULL;
    CHECK_CODE(beckon_client_new(&c, &client), BECKON_OK, NULL);
    CHECK_STR(beckon_last_error_message(), "");
    beckon_client_free(client);
}

static void log_handler_errors(void) {
    T_SECTION("beckon_set_log_handler: max_level range");
    CHECK_CODE(beckon_set_log_handler(never_log, NULL, -1), BECKON_ERROR_INVALID_ARGUMENT, "max_level");
    CHECK_CODE(beckon_set_log_handler(never_log, NULL, 6), BECKON_ERROR_INVALID_ARGUMENT, "max_level");
    CHECK_CODE(beckon_set_log_handler(NULL, NULL, 6), BECKON_ERROR_INVALID_ARGUMENT, "max_level");
    CHECK_CODE(beckon_set_log_handler(never_log, NULL, INT32_MAX), BECKON_ERROR_INVALID_ARGUMENT,
               "max_level");
    CHECK_CODE(beckon_set_log_handler(never_log, NULL, BECKON_LOG_TRACE), BECKON_OK, NULL);
    CHECK_CODE(beckon_set_log_handler(NULL, NULL, BECKON_LOG_OFF), BECKON_OK, NULL);
    CHECK_CODE(beckon_set_log_handler(never_log, NULL, BECKON_LOG_OFF), BECKON_OK, NULL);
}

static void login_errors(beckon_client *client) {
    T_SECTION("beckon_client_login: user id and token");
    CHECK_CODE(beckon_client_login(client, NULL, NULL, never_result, "login NULL user"),
               BECKON_ERROR_INVALID_ARGUMENT, "user_id");
    CHECK_CODE(beckon_client_login(client, "\xff\xfe", NULL, never_result, "login bad utf8"),
               BECKON_ERROR_INVALID_ARGUMENT, "user_id");
    CHECK_CODE(beckon_client_login(client, "", NULL, never_result, "login empty"),
               BECKON_ERROR_INVALID_ARGUMENT, "user_id");
    char *long_user = t_repeat('u', 65);
    CHECK_CODE(beckon_client_login(client, long_user, NULL, never_result, "login 65 bytes"),
               BECKON_ERROR_INVALID_ARGUMENT, "user_id");
    free(long_user);
    const char *bad_users[] = {"has space", "semi;colon", "slash/x", "caf\xc3\xa9", "tab\tx",
                               "quote\"", "new\nline"};
    for (size_t i = 0; i < sizeof bad_users / sizeof bad_users[0]; i++)
        CHECK_CODE(beckon_client_login(client, bad_users[i], NULL, never_result, "login bad chars"),
                   BECKON_ERROR_INVALID_ARGUMENT, "user_id");
    CHECK_CODE(beckon_client_login(client, "alice", "\xff\xfe", never_result, "login bad token"),
               BECKON_ERROR_INVALID_ARGUMENT, "token");
    char *huge_token = t_repeat('t', 5000);
    CHECK_CODE(beckon_client_login(client, "alice", huge_token, never_result, "login huge token"),
               BECKON_ERROR_INVALID_ARGUMENT, "token");
    free(huge_token);
}

static void not_logged_in_errors(beckon_client *client) {
    T_SECTION("operations before login: NOT_LOGGED_IN");
    const char *one[] = {"bob"};
    beckon_invitation_config inv = t_invitation(10, NULL);
    CHECK_CODE(beckon_send_invitation(client, one, 1, &inv, never_send, "send before login"),
               BECKON_ERROR_NOT_LOGGED_IN, NULL);
    CHECK_CODE(beckon_cancel_invitation(client, UNKNOWN_ID, NULL, 0, NULL, never_cancel,
                                        "cancel before login"),
               BECKON_ERROR_NOT_LOGGED_IN, NULL);
    CHECK_CODE(beckon_accept_invitation(client, UNKNOWN_ID, NULL, never_result, "accept before login"),
               BECKON_ERROR_NOT_LOGGED_IN, NULL);
    CHECK_CODE(beckon_refuse_invitation(client, UNKNOWN_ID, NULL, never_result, "refuse before login"),
               BECKON_ERROR_NOT_LOGGED_IN, NULL);
    CHECK_CODE(beckon_client_logout(client, never_result, "logout before login"),
               BECKON_ERROR_NOT_LOGGED_IN, NULL);
    CHECK_CODE(beckon_client_renew_token(client, "tok", never_result, "renew before login"),
               BECKON_ERROR_NOT_LOGGED_IN, NULL);
}

static void send_errors(beckon_client *alice) {
    T_SECTION("beckon_send_invitation: invitees, timeout, payloads, notification, flags");
    const char *one[] = {"bob"};
    beckon_invitation_config inv = t_invitation(30, NULL);

    CHECK_CODE(beckon_send_invitation(alice, NULL, 1, &inv, never_send, "NULL invitees"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitees");
    const char *with_null[] = {"bob", NULL, "carol"};
    CHECK_CODE(beckon_send_invitation(alice, with_null, 3, &inv, never_send, "NULL entry"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitees[1]");
    CHECK_CODE(beckon_send_invitation(alice, one, 0, &inv, never_send, "count 0"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitees");
    const char *bad_entry[] = {"bob", "b c"};
    CHECK_CODE(beckon_send_invitation(alice, bad_entry, 2, &inv, never_send, "bad entry"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitees[1]");
    const char *utf8_entry[] = {"\xff\xfe"};
    CHECK_CODE(beckon_send_invitation(alice, utf8_entry, 1, &inv, never_send, "bad utf8 entry"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitees[0]");
    const char *empty_entry[] = {""};
    CHECK_CODE(beckon_send_invitation(alice, empty_entry, 1, &inv, never_send, "empty entry"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitees[0]");

    /* 33 distinct: too many; 40 entries folding to 32 distinct: accepted */
    char names[40][16];
    const char *many[40];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "offline%02d", i % 33);
        many[i] = names[i];
    }
    CHECK_CODE(beckon_send_invitation(alice, many, 33, &inv, never_send, "33 distinct"),
               BECKON_ERROR_TOO_MANY_INVITEES, "invitees");
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "offline%02d", i % 32);
        many[i] = names[i];
    }
    t_op *folded = new_op("send of 40 entries folding to 32", NULL);
    CHECK_CODE(beckon_send_invitation(alice, many, 40, &inv, t_on_send, folded), BECKON_OK, NULL);
    CHECK_OP(folded, BECKON_OK, NULL);
    CHECK_INT(folded->invitee_count, 32); /* all offline, each once */
    for (size_t i = 0; i < folded->invitee_count; i++)
        CHECK_INT(folded->invitees[i].state, BECKON_INVITEE_OFFLINE);

    const char *self[] = {"bob", "alice"};
    CHECK_CODE(beckon_send_invitation(alice, self, 2, &inv, never_send, "self invite"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitees");

    CHECK_CODE(beckon_send_invitation(alice, one, 1, NULL, never_send, "NULL config"),
               BECKON_ERROR_INVALID_ARGUMENT, "config");
    beckon_invitation_config sized = inv;
    sized.struct_size = 0;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &sized, never_send, "struct_size 0"),
               BECKON_ERROR_INVALID_ARGUMENT, "struct_size");
    sized.struct_size = sizeof sized - 1;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &sized, never_send, "struct_size small"),
               BECKON_ERROR_INVALID_ARGUMENT, "struct_size");
    sized.struct_size = UINT32_MAX;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &sized, never_send, "struct_size huge"),
               BECKON_ERROR_INVALID_ARGUMENT, "struct_size");
    struct {
        beckon_invitation_config config;
        unsigned char tail[16];
    } bigger;
    memset(&bigger, 0, sizeof bigger);
    bigger.config = inv;
    bigger.config.struct_size = sizeof bigger;
    bigger.tail[15] = 1;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &bigger.config, never_send, "unknown tail"),
               BECKON_ERROR_INVALID_ARGUMENT, "config");
    bigger.tail[15] = 0;
    t_op *big_ok = new_op("send with a zero tail", NULL);
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &bigger.config, t_on_send, big_ok), BECKON_OK, NULL);
    CHECK_OP(big_ok, BECKON_OK, NULL);

    beckon_invitation_config t = inv;
    t.timeout_seconds = 0;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "timeout 0"),
               BECKON_ERROR_INVALID_ARGUMENT, "timeout");
    t.timeout_seconds = 601;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "timeout 601"),
               BECKON_ERROR_INVALID_ARGUMENT, "timeout");
    t.timeout_seconds = UINT32_MAX;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "timeout max"),
               BECKON_ERROR_INVALID_ARGUMENT, "timeout");
    const uint32_t good_timeouts[] = {1, 600};
    for (int i = 0; i < 2; i++) {
        t.timeout_seconds = good_timeouts[i];
        t_op *op = new_op(good_timeouts[i] == 1 ? "send timeout 1" : "send timeout 600", NULL);
        CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, t_on_send, op), BECKON_OK, NULL);
        CHECK_OP(op, BECKON_OK, NULL);
    }

    char *data = t_repeat('d', 8192);
    t = inv;
    t.extended_data = data;
    t_op *data_ok = new_op("send extended data 8192", NULL);
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, t_on_send, data_ok), BECKON_OK, NULL);
    CHECK_OP(data_ok, BECKON_OK, NULL);
    free(data);
    data = t_repeat('d', 8193);
    t.extended_data = data;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "extended 8193"),
               BECKON_ERROR_PAYLOAD_TOO_LARGE, "extended_data");
    free(data);
    t.extended_data = "ok \xff\xfe then bad";
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "extended bad utf8"),
               BECKON_ERROR_INVALID_ARGUMENT, "extended_data");
    t.extended_data = "\xc3"; /* truncated sequence */
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "extended truncated utf8"),
               BECKON_ERROR_INVALID_ARGUMENT, "extended_data");

    /* notification fields: at the limit accepted, one over refused */
    struct {
        const char *field;
        size_t limit;
    } fields[] = {{"title", 256}, {"message", 1024}, {"resource_id", 64}, {"payload", 4096}};
    for (int f = 0; f < 4; f++) {
        for (int over = 0; over <= 1; over++) {
            char *value = t_repeat('n', fields[f].limit + (size_t)over);
            beckon_notification_config note;
            memset(&note, 0, sizeof note);
            note.struct_size = sizeof note;
            if (f == 0) note.title = value;
            if (f == 1) note.message = value;
            if (f == 2) note.resource_id = value;
            if (f == 3) note.payload = value;
            t = inv;
            t.notification = &note;
            char expect_field[64];
            snprintf(expect_field, sizeof expect_field, "notification.%s", fields[f].field);
            if (over) {
                t_log("  notification.%s of %zu bytes:", fields[f].field, fields[f].limit + 1);
                CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "notification over"),
                           BECKON_ERROR_PAYLOAD_TOO_LARGE, expect_field);
            } else {
                t_op *op = new_op("send notification at limit", NULL);
                CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, t_on_send, op), BECKON_OK, NULL);
                CHECK_OP(op, BECKON_OK, NULL);
            }
            free(value);
        }
    }
    beckon_notification_config note;
    memset(&note, 0, sizeof note);
    note.struct_size = 0;
    note.title = "x";
    t = inv;
    t.notification = &note;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "notification size 0"),
               BECKON_ERROR_INVALID_ARGUMENT, "notification");
    note.struct_size = 3;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "notification size 3"),
               BECKON_ERROR_INVALID_ARGUMENT, "notification");
    note.struct_size = UINT32_MAX;
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "notification size huge"),
               BECKON_ERROR_INVALID_ARGUMENT, "notification");
    note.struct_size = sizeof note;
    note.title = "\xff";
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "notification bad utf8"),
               BECKON_ERROR_INVALID_ARGUMENT, "notification.title");
    note.title = NULL; /* NULL fields mean "" */
    t_op *note_null = new_op("send notification with NULL fields", NULL);
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, t_on_send, note_null), BECKON_OK, NULL);
    CHECK_OP(note_null, BECKON_OK, NULL);

    const uint32_t bad_flags[] = {2, 4, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        t = inv;
        t.flags = bad_flags[i];
        CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, never_send, "bad flags"),
                   BECKON_ERROR_INVALID_ARGUMENT, "flags");
    }
    t = inv;
    t.flags = BECKON_INVITATION_ONLINE_ONLY;
    t_op *flag_ok = new_op("send online-only", NULL);
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &t, t_on_send, flag_ok), BECKON_OK, NULL);
    CHECK_OP(flag_ok, BECKON_OK, NULL);

    /* NULL callback is allowed for send: nothing to run, nothing to crash */
    CHECK_CODE(beckon_send_invitation(alice, one, 1, &inv, NULL, NULL), BECKON_OK, NULL);
}

static void id_errors(beckon_client *client) {
    T_SECTION("invitation ids: NULL, empty, malformed for cancel/accept/refuse");
    const char *bad_ids[] = {"", "xyz", "0123456789ABCDEF0123456789ABCDEF",
                             "0123456789abcdef0123456789abcde", /* 31 */
                             "0123456789abcdef0123456789abcdef0", /* 33 */
                             "0123456789abcdef0123456789abcdeg", "\xff\xfe"};
    CHECK_CODE(beckon_cancel_invitation(client, NULL, NULL, 0, NULL, never_cancel, "cancel NULL id"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitation_id");
    CHECK_CODE(beckon_accept_invitation(client, NULL, NULL, never_result, "accept NULL id"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitation_id");
    CHECK_CODE(beckon_refuse_invitation(client, NULL, NULL, never_result, "refuse NULL id"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitation_id");
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        CHECK_CODE(beckon_cancel_invitation(client, bad_ids[i], NULL, 0, NULL, never_cancel, "cancel bad id"),
                   BECKON_ERROR_INVALID_ARGUMENT, "invitation_id");
        CHECK_CODE(beckon_accept_invitation(client, bad_ids[i], NULL, never_result, "accept bad id"),
                   BECKON_ERROR_INVALID_ARGUMENT, "invitation_id");
        CHECK_CODE(beckon_refuse_invitation(client, bad_ids[i], NULL, never_result, "refuse bad id"),
                   BECKON_ERROR_INVALID_ARGUMENT, "invitation_id");
    }
    /* other arguments of cancel/accept/refuse */
    const char *two[] = {"bob", "carol"};
    CHECK_CODE(beckon_cancel_invitation(client, UNKNOWN_ID, NULL, 2, NULL, never_cancel, "cancel NULL list"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitees");
    CHECK_CODE(beckon_cancel_invitation(client, UNKNOWN_ID, two, 0, NULL, never_cancel, "cancel empty list"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitees");
    const char *with_null[] = {"bob", NULL};
    CHECK_CODE(beckon_cancel_invitation(client, UNKNOWN_ID, with_null, 2, NULL, never_cancel,
                                        "cancel NULL entry"),
               BECKON_ERROR_INVALID_ARGUMENT, "invitees[1]");
    char *big = t_repeat('x', 8193);
    CHECK_CODE(beckon_cancel_invitation(client, UNKNOWN_ID, NULL, 0, big, never_cancel, "cancel big data"),
               BECKON_ERROR_PAYLOAD_TOO_LARGE, "extended_data");
    CHECK_CODE(beckon_accept_invitation(client, UNKNOWN_ID, big, never_result, "accept big data"),
               BECKON_ERROR_PAYLOAD_TOO_LARGE, "extended_data");
    CHECK_CODE(beckon_refuse_invitation(client, UNKNOWN_ID, big, never_result, "refuse big data"),
               BECKON_ERROR_PAYLOAD_TOO_LARGE, "extended_data");
    free(big);
    CHECK_CODE(beckon_cancel_invitation(client, UNKNOWN_ID, NULL, 0, "\xff", never_cancel, "cancel utf8"),
               BECKON_ERROR_INVALID_ARGUMENT, "extended_data");
    CHECK_CODE(beckon_accept_invitation(client, UNKNOWN_ID, "\xff", never_result, "accept utf8"),
               BECKON_ERROR_INVALID_ARGUMENT, "extended_data");
    CHECK_CODE(beckon_refuse_invitation(client, UNKNOWN_ID, "\xff", never_result, "refuse utf8"),
               BECKON_ERROR_INVALID_ARGUMENT, "extended_data");
}

static void hub_decided_errors(beckon_client *alice, beckon_client *bob, beckon_client *carol,
                               beckon_client *dave) {
    T_SECTION("errors the hub decides, delivered to the callback");
    t_op *op;
    op = new_op("accept of an unknown id", NULL);
    CHECK_CODE(beckon_accept_invitation(bob, UNKNOWN_ID, NULL, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_INVITATION_NOT_FOUND, "invitation_id");
    op = new_op("refuse of an unknown id", NULL);
    CHECK_CODE(beckon_refuse_invitation(bob, UNKNOWN_ID, NULL, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_INVITATION_NOT_FOUND, "invitation_id");
    op = new_op("cancel of an unknown id", NULL);
    CHECK_CODE(beckon_cancel_invitation(alice, UNKNOWN_ID, NULL, 0, NULL, t_on_cancel, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_INVITATION_NOT_FOUND, "invitation_id");

    const char *bc[] = {"bob", "carol"};
    beckon_invitation_config inv = t_invitation(600, "hub errors");
    t_op *sent = new_op("send to bob and carol", NULL);
    CHECK_CODE(beckon_send_invitation(alice, bc, 2, &inv, t_on_send, sent), BECKON_OK, NULL);
    CHECK_OP(sent, BECKON_OK, NULL);
    const char *id = sent->invitation_id;
    CHECK_INT(sent->invitee_count, 0); /* both online */

    op = new_op("accept by a non-invitee (dave)", NULL);
    CHECK_CODE(beckon_accept_invitation(dave, id, NULL, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_NOT_PERMITTED, NULL);
    op = new_op("refuse by a non-invitee (dave)", NULL);
    CHECK_CODE(beckon_refuse_invitation(dave, id, NULL, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_NOT_PERMITTED, NULL);
    op = new_op("accept by the inviter (alice)", NULL);
    CHECK_CODE(beckon_accept_invitation(alice, id, NULL, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_NOT_PERMITTED, NULL);
    op = new_op("cancel by a non-inviter (bob)", NULL);
    CHECK_CODE(beckon_cancel_invitation(bob, id, NULL, 0, NULL, t_on_cancel, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_NOT_PERMITTED, NULL);

    const char *not_invited[] = {"dave"};
    op = new_op("cancel of a non-invitee (dave)", NULL);
    int rc = beckon_cancel_invitation(alice, id, not_invited, 1, NULL, t_on_cancel, op);
    if (rc == BECKON_OK) {
        CHECK_OP(op, BECKON_ERROR_INVALID_ARGUMENT, "invitees");
    } else {
        t_op_no_callback(op, rc);
        t_check_code(__FILE__, __LINE__, "cancel of a non-invitee", rc, BECKON_ERROR_INVALID_ARGUMENT,
                     "invitees");
    }

    op = new_op("accept by bob", NULL);
    CHECK_CODE(beckon_accept_invitation(bob, id, "yes", t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_OK, NULL);
    op = new_op("accept by bob again", NULL);
    CHECK_CODE(beckon_accept_invitation(bob, id, NULL, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_ALREADY_ANSWERED, NULL);
    op = new_op("refuse by bob after accepting", NULL);
    CHECK_CODE(beckon_refuse_invitation(bob, id, NULL, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_ALREADY_ANSWERED, NULL);

    const char *just_carol[] = {"carol"};
    op = new_op("cancel for carol", NULL);
    CHECK_CODE(beckon_cancel_invitation(alice, id, just_carol, 1, "bye carol", t_on_cancel, op), BECKON_OK,
               NULL);
    CHECK_OP(op, BECKON_OK, NULL);
    CHECK_INT(op->invitee_count, 0);
    op = new_op("accept by carol after cancel", NULL);
    CHECK_CODE(beckon_accept_invitation(carol, id, NULL, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_INVITATION_CLOSED, NULL);
    op = new_op("refuse by carol after cancel", NULL);
    CHECK_CODE(beckon_refuse_invitation(carol, id, NULL, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_INVITATION_CLOSED, NULL);
    /* every invitee is final: the invitation has ended */
    op = new_op("cancel of an ended invitation", NULL);
    CHECK_CODE(beckon_cancel_invitation(alice, id, NULL, 0, NULL, t_on_cancel, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_INVITATION_CLOSED, NULL);
}

static void token_errors(void) {
    T_SECTION("memory hubs with a secret; tokens");
    beckon_hub_config hub;
    memset(&hub, 0, sizeof hub);
    hub.struct_size = sizeof hub;
    hub.secret = SECRET;

    CHECK_CODE(beckon_memory_hub_create(NULL, &hub), BECKON_ERROR_INVALID_ARGUMENT, "name");
    CHECK_CODE(beckon_memory_hub_create(SECURE_HUB_NAME, NULL), BECKON_ERROR_INVALID_ARGUMENT, "config");
    /* a bad hub name: the message should name the argument, `name` */
    CHECK_CODE(beckon_memory_hub_create("bad name", &hub), BECKON_ERROR_INVALID_ARGUMENT, "name");
    {
        /* stricter: the field named first should be `name`, not `server_url` */
        beckon_error rc = beckon_memory_hub_create("bad name", &hub);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", beckon_last_error_message());
        CHECK_INT(rc, BECKON_ERROR_INVALID_ARGUMENT);
        CHECK_MSG(strncmp(msg, "name", 4) == 0,
                  "beckon_memory_hub_create(\"bad name\"): message \"%s\" should start with the "
                  "argument's name \"name\" (it names server_url, which this function has not got)",
                  msg);
    }
    beckon_hub_config bad = hub;
    bad.struct_size = 0;
    CHECK_CODE(beckon_memory_hub_create(SECURE_HUB_NAME, &bad), BECKON_ERROR_INVALID_ARGUMENT, "struct_size");
    bad = hub;
    bad.max_invitees = 1001;
    CHECK_CODE(beckon_memory_hub_create(SECURE_HUB_NAME, &bad), BECKON_ERROR_INVALID_ARGUMENT, "max_invitees");
    bad = hub;
    bad.secret = "\xff";
    CHECK_CODE(beckon_memory_hub_create(SECURE_HUB_NAME, &bad), BECKON_ERROR_INVALID_ARGUMENT, "secret");

    CHECK_CODE(beckon_memory_hub_create(SECURE_HUB_NAME, &hub), BECKON_OK, NULL);
    CHECK_CODE(beckon_memory_hub_create(SECURE_HUB_NAME, &hub), BECKON_ERROR_INVALID_ARGUMENT, "name");
    /* the default hub made by a client's first use of a name exists too */
    CHECK_CODE(beckon_memory_hub_create("c-api-errors", &hub), BECKON_ERROR_INVALID_ARGUMENT, "name");

    char alice_token[BECKON_TOKEN_MAX_LEN], bob_token[BECKON_TOKEN_MAX_LEN];
    char expired[BECKON_TOKEN_MAX_LEN], renewed[BECKON_TOKEN_MAX_LEN];
    uint64_t later = (uint64_t)time(NULL) + 3600;
    CHECK_CODE(beckon_token_create(SECRET, "alice", later, alice_token, sizeof alice_token), BECKON_OK, NULL);
    CHECK(strlen(alice_token) > 0 && strlen(alice_token) < BECKON_TOKEN_MAX_LEN);
    CHECK_CODE(beckon_token_create(SECRET, "bob", later, bob_token, sizeof bob_token), BECKON_OK, NULL);
    CHECK_CODE(beckon_token_create(SECRET, "alice", 1000, expired, sizeof expired), BECKON_OK, NULL);
    CHECK_CODE(beckon_token_create(SECRET, "alice", later + 60, renewed, sizeof renewed), BECKON_OK, NULL);
    /* the biggest expiry still fits the documented maximum */
    char biggest[BECKON_TOKEN_MAX_LEN];
    CHECK_CODE(beckon_token_create(SECRET, "alice", UINT64_MAX, biggest, sizeof biggest), BECKON_OK, NULL);

    char small[10];
    memset(small, 'Z', sizeof small);
    CHECK_CODE(beckon_token_create(SECRET, "alice", later, small, sizeof small), BECKON_ERROR_INVALID_ARGUMENT,
               "buffer_len");
    CHECK_CODE(beckon_token_create(SECRET, "alice", later, small, 0), BECKON_ERROR_INVALID_ARGUMENT,
               "buffer_len");
    CHECK_CODE(beckon_token_create(SECRET, "alice", later, NULL, 100), BECKON_ERROR_INVALID_ARGUMENT, "buffer");
    CHECK_CODE(beckon_token_create(NULL, "alice", later, small, sizeof small), BECKON_ERROR_INVALID_ARGUMENT,
               "secret");
    CHECK_CODE(beckon_token_create("", "alice", later, small, sizeof small), BECKON_ERROR_INVALID_ARGUMENT,
               "secret");
    char buf[BECKON_TOKEN_MAX_LEN];
    CHECK_CODE(beckon_token_create(SECRET, "bad user", later, buf, sizeof buf), BECKON_ERROR_INVALID_ARGUMENT,
               "user_id");
    CHECK_CODE(beckon_token_create(SECRET, NULL, later, buf, sizeof buf), BECKON_ERROR_INVALID_ARGUMENT,
               "user_id");

    t_recorder rec;
    t_recorder_init(&rec, "alice@secure", 64);
    beckon_client *c = t_client_with_recorder(SECURE_HUB, NULL, &rec);
    struct {
        const char *what;
        const char *token;
        beckon_error expected;
    } logins[] = {{"login with another user's token", bob_token, BECKON_ERROR_AUTH_FAILED},
                  {"login with an expired token", expired, BECKON_ERROR_TOKEN_EXPIRED},
                  {"login with a garbage token", "garbage", BECKON_ERROR_AUTH_FAILED},
                  {"login with a truncated token", "v1.123.", BECKON_ERROR_AUTH_FAILED},
                  {"login with no token", NULL, BECKON_ERROR_AUTH_FAILED}};
    for (size_t i = 0; i < sizeof logins / sizeof logins[0]; i++) {
        t_op *op = new_op(logins[i].what, &rec);
        CHECK_CODE(beckon_client_login(c, "alice", logins[i].token, t_on_result, op), BECKON_OK, NULL);
        CHECK_OP(op, logins[i].expected, "token");
        /* a failed login ends DISCONNECTED: the client may try again */
        WAIT_EVENTS(&rec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1, 2 * (i + 1));
    }
    CHECK_INT(t_count_events(&rec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1), 10);
    t_op *good = new_op("login with a good token", &rec);
    CHECK_CODE(beckon_client_login(c, "alice", alice_token, t_on_result, good), BECKON_OK, NULL);
    CHECK_OP(good, BECKON_OK, NULL);

    t_op *op = new_op("renew with a good token", &rec);
    CHECK_CODE(beckon_client_renew_token(c, renewed, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_OK, NULL);
    op = new_op("renew with another user's token", &rec);
    CHECK_CODE(beckon_client_renew_token(c, bob_token, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_AUTH_FAILED, "token");
    op = new_op("renew with an expired token", &rec);
    CHECK_CODE(beckon_client_renew_token(c, expired, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_TOKEN_EXPIRED, "token");
    op = new_op("renew with garbage", &rec);
    CHECK_CODE(beckon_client_renew_token(c, "garbage", t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_AUTH_FAILED, "token");
    CHECK_CODE(beckon_client_renew_token(c, NULL, never_result, "renew NULL token"),
               BECKON_ERROR_INVALID_ARGUMENT, "token");
    CHECK_CODE(beckon_client_renew_token(c, "\xff", never_result, "renew bad utf8"),
               BECKON_ERROR_INVALID_ARGUMENT, "token");
    /* still logged in after the failed renewals */
    op = new_op("accept of an unknown id on the secure hub", &rec);
    CHECK_CODE(beckon_accept_invitation(c, UNKNOWN_ID, NULL, t_on_result, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_INVITATION_NOT_FOUND, NULL);
    beckon_client_free(c);
    CHECK_INT(atomic_load(&rec.overlaps), 0);
    t_recorder_destroy(&rec);
}

static void hub_limits_and_retention(void) {
    T_SECTION("a hub with max_invitees 2 and a 300 ms retention");
    beckon_hub_config hub;
    memset(&hub, 0, sizeof hub);
    hub.struct_size = sizeof hub;
    hub.max_invitees = 2;
    hub.retention_ms = 300;
    CHECK_CODE(beckon_memory_hub_create("c-api-errors-small", &hub), BECKON_OK, NULL);
    beckon_client *c = t_client_new("memory://c-api-errors-small", NULL, BECKON_DISPATCH_THREAD);
    t_login(c, "alice", NULL, NULL);
    const char *three[] = {"x1", "x2", "x3"};
    beckon_invitation_config inv = t_invitation(30, NULL);
    CHECK_CODE(beckon_send_invitation(c, three, 3, &inv, never_send, "3 on a hub of 2"),
               BECKON_ERROR_TOO_MANY_INVITEES, "invitees");
    const char *folded[] = {"x1", "x2", "x1"};
    t_op *sent = new_op("send of 2 distinct on a hub of 2", NULL);
    CHECK_CODE(beckon_send_invitation(c, folded, 3, &inv, t_on_send, sent), BECKON_OK, NULL);
    CHECK_OP(sent, BECKON_OK, NULL);
    t_op *op = new_op("cancel all", NULL);
    CHECK_CODE(beckon_cancel_invitation(c, sent->invitation_id, NULL, 0, NULL, t_on_cancel, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_OK, NULL);
    op = new_op("cancel again, within retention", NULL);
    CHECK_CODE(beckon_cancel_invitation(c, sent->invitation_id, NULL, 0, NULL, t_on_cancel, op), BECKON_OK, NULL);
    CHECK_OP(op, BECKON_ERROR_INVITATION_CLOSED, NULL);
    /* after the retention the hub forgets it: NOT_FOUND */
    t_sleep_ms(600);
    beckon_error last = -1;
    long deadline = t_now_ms() + (t_slow() ? 20000 : 3000);
    do {
        op = new_op("cancel after retention", NULL);
        CHECK_CODE(beckon_cancel_invitation(c, sent->invitation_id, NULL, 0, NULL, t_on_cancel, op), BECKON_OK,
                   NULL);
        WAIT_OP(op);
        last = op->error;
        if (last != BECKON_ERROR_INVITATION_NOT_FOUND) t_sleep_ms(200);
    } while (last != BECKON_ERROR_INVITATION_NOT_FOUND && t_now_ms() < deadline);
    CHECK_MSG(last == BECKON_ERROR_INVITATION_NOT_FOUND,
              "an ended invitation was not forgotten after its 300 ms retention: %s", beckon_error_name(last));
    beckon_client_free(c);
}

/* A TCP socket on 127.0.0.1 with a port of its own: bound only (connections
 * are refused) or listening (connections complete in the kernel's backlog but
 * nobody ever answers). Returns the fd; the port in *port. */
static int loopback_socket(int listening, int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    if (listening) REQUIRE(listen(fd, 8) == 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

/* A login that fails at `url`: `expected` in its callback; CONNECTING then
 * DISCONNECTED (LOGIN) before it; not logged in afterwards. */
static void failed_login(const char *url, uint32_t request_timeout_ms, beckon_error expected, const char *what) {
    t_recorder rec;
    t_recorder_init(&rec, what, 64);
    beckon_client_config config = client_config(url);
    config.request_timeout_ms = request_timeout_ms;
    beckon_client *c = NULL;
    REQUIRE_CODE(beckon_client_new(&config, &c), BECKON_OK, NULL);
    rec.client = c;
    REQUIRE_CODE(beckon_client_set_event_handler(c, t_record_event, &rec), BECKON_OK, NULL);
    for (int attempt = 1; attempt <= 2; attempt++) {
        t_op *op = new_op(attempt == 1 ? what : "the same login again", &rec);
        CHECK_CODE(beckon_client_login(c, "alice", NULL, t_on_result, op), BECKON_OK, NULL);
        CHECK_OP(op, expected, NULL);
        CHECK_INT(atomic_load(&op->calls), 1);
        WAIT_EVENTS(&rec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1, (size_t)(2 * attempt));
        pthread_mutex_lock(&rec.mutex);
        const t_event *connecting = rec.count >= 2 ? &rec.events[rec.count - 2] : NULL;
        const t_event *down = rec.count >= 2 ? &rec.events[rec.count - 1] : NULL;
        pthread_mutex_unlock(&rec.mutex);
        REQUIRE(connecting != NULL && down != NULL);
        CHECK_INT(connecting->connection_state, BECKON_CONNECTION_CONNECTING);
        CHECK_INT(connecting->connection_reason, BECKON_REASON_LOGIN);
        CHECK_INT(down->connection_state, BECKON_CONNECTION_DISCONNECTED);
        CHECK_INT(down->connection_reason, BECKON_REASON_LOGIN);
        CHECK_MSG(down->seq < op->seq, "%s: DISCONNECTED (#%ld) after the login callback (#%ld)", what, down->seq,
                  op->seq);
        const char *one[] = {"bob"};
        beckon_invitation_config inv = t_invitation(10, NULL);
        CHECK_CODE(beckon_send_invitation(c, one, 1, &inv, never_send, "send after a failed login"),
                   BECKON_ERROR_NOT_LOGGED_IN, NULL);
        CHECK_CODE(beckon_client_logout(c, never_result, "logout after a failed login"), BECKON_ERROR_NOT_LOGGED_IN,
                   NULL);
    }
    /* no callback can run after free: "exactly once" is now final */
    beckon_client_free(c);
    CHECK_INT(t_count_events(&rec, BECKON_EVENT_CONNECTION_STATE_CHANGED, NULL, NULL, -1), 4);
    CHECK_INT(t_event_count(&rec), 4);
    CHECK_INT(atomic_load(&rec.overlaps), 0);
    t_recorder_destroy(&rec);
}

static void network_errors(void) {
    T_SECTION("ws:// and wss:// URLs; servers that cannot be reached or never answer");
    const char *good_urls[] = {"ws://localhost:1", "wss://example.invalid:443", "ws://127.0.0.1:7600/beckon",
                               "ws://[::1]:7600", "wss://beckon.example.com"};
    for (size_t i = 0; i < sizeof good_urls / sizeof good_urls[0]; i++) {
        beckon_client_config c = client_config(good_urls[i]);
        beckon_client *client = NULL;
        t_log("  %s:", good_urls[i]);
        CHECK_CODE(beckon_client_new(&c, &client), BECKON_OK, NULL);
        CHECK(client != NULL);
        beckon_client_free(client); /* never logged in: nothing is connected */
    }

    int port = 0;
    int closed = loopback_socket(0, &port);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", port);
    t_log("  login to %s (bound, not listening: refused):", url);
    failed_login(url, 0, BECKON_ERROR_NETWORK, "login to a closed port");
    close(closed);

    int silent = loopback_socket(1, &port);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", port);
    t_log("  login to %s (listening, never answering) with a 300 ms request timeout:", url);
    failed_login(url, 300, BECKON_ERROR_REQUEST_TIMEOUT, "login to a silent port");
    close(silent);
}

static void *fail_on_other_thread(void *arg) {
    (void)arg;
    CHECK_CODE(beckon_client_login(NULL, "x", NULL, NULL, NULL), BECKON_ERROR_INVALID_ARGUMENT, "client");
    return NULL;
}

static void last_error_is_per_thread(void) {
    T_SECTION("beckon_last_error_message is per thread");
    CHECK_CODE(beckon_set_log_handler(never_log, NULL, 99), BECKON_ERROR_INVALID_ARGUMENT, "max_level");
    char mine[256];
    snprintf(mine, sizeof mine, "%s", beckon_last_error_message());
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, fail_on_other_thread, NULL) == 0);
    pthread_join(th, NULL);
    CHECK_STR(beckon_last_error_message(), mine);
    /* a success on this thread clears it */
    CHECK_CODE(beckon_set_log_handler(NULL, NULL, BECKON_LOG_OFF), BECKON_OK, NULL);
    CHECK_STR(beckon_last_error_message(), "");
}

int main(void) {
    t_start("test_api_errors");
    names_and_versions();
    client_new_errors();
    log_handler_errors();

    t_recorder alice_rec;
    t_recorder_init(&alice_rec, "alice", 4096);
    beckon_client *alice = t_client_with_recorder(HUB, "alice-phone", &alice_rec);
    login_errors(alice);
    not_logged_in_errors(alice);

    T_SECTION("login, then login twice");
    t_login(alice, "alice", NULL, &alice_rec);
    CHECK_CODE(beckon_client_login(alice, "alice", NULL, never_result, "login twice"),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    CHECK_CODE(beckon_client_login(alice, "other", NULL, never_result, "login as another user"),
               BECKON_ERROR_INVALID_ARGUMENT, "client");
    /* a 64-byte user id is accepted */
    {
        beckon_client *c64 = t_client_new(HUB, NULL, BECKON_DISPATCH_THREAD);
        char *user64 = t_repeat('u', 64);
        t_login(c64, user64, NULL, NULL);
        free(user64);
        beckon_client_free(c64);
    }

    T_SECTION("poll: thread-mode client, timeout range");
    CHECK_CODE(beckon_client_poll(alice, 0, NULL), BECKON_ERROR_INVALID_ARGUMENT, NULL);
    {
        beckon_client *polled = t_client_new(HUB, NULL, BECKON_DISPATCH_POLL);
        uint32_t ran = 7;
        CHECK_CODE(beckon_client_poll(polled, -5, &ran), BECKON_ERROR_INVALID_ARGUMENT, "timeout_ms");
        CHECK_INT(ran, 0);
        CHECK_CODE(beckon_client_poll(polled, INT32_MIN, NULL), BECKON_ERROR_INVALID_ARGUMENT, "timeout_ms");
        CHECK_CODE(beckon_client_poll(polled, 3600001, NULL), BECKON_ERROR_INVALID_ARGUMENT, "timeout_ms");
        ran = 7;
        CHECK_CODE(beckon_client_poll(polled, 0, &ran), BECKON_OK, NULL);
        CHECK_INT(ran, 0);
        CHECK_CODE(beckon_client_poll(polled, 10, NULL), BECKON_OK, NULL);
        beckon_client_free(polled);
    }

    send_errors(alice);
    id_errors(alice);

    t_recorder bob_rec, carol_rec, dave_rec;
    t_recorder_init(&bob_rec, "bob", 4096);
    t_recorder_init(&carol_rec, "carol", 4096);
    t_recorder_init(&dave_rec, "dave", 4096);
    beckon_client *bob = t_client_with_recorder(HUB, NULL, &bob_rec);
    beckon_client *carol = t_client_with_recorder(HUB, NULL, &carol_rec);
    beckon_client *dave = t_client_with_recorder(HUB, NULL, &dave_rec);
    t_login(bob, "bob", NULL, &bob_rec);
    t_login(carol, "carol", NULL, &carol_rec);
    t_login(dave, "dave", NULL, &dave_rec);
    hub_decided_errors(alice, bob, carol, dave);

    token_errors();
    hub_limits_and_retention();
    network_errors();
    last_error_is_per_thread();

    T_SECTION("no callback of a refused call ran; every accepted call's callback ran once");
    /* Callbacks of one client run in order: one more operation per client flushes them. */
    beckon_client *clients[] = {alice, bob, carol, dave};
    t_recorder *recs[] = {&alice_rec, &bob_rec, &carol_rec, &dave_rec};
    for (int i = 0; i < 4; i++) {
        t_op *flush = new_op("flush", recs[i]);
        CHECK_CODE(beckon_accept_invitation(clients[i], UNKNOWN_ID, NULL, t_on_result, flush), BECKON_OK, NULL);
        CHECK_OP(flush, BECKON_ERROR_INVITATION_NOT_FOUND, NULL);
    }
    for (int i = 0; i < 4; i++) beckon_client_free(clients[i]);
    CHECK_INT(atomic_load(&unexpected_callbacks), 0);
    for (int i = 0; i < op_count; i++) {
        CHECK_MSG(atomic_load(&ops[i].calls) == 1, "callback of \"%s\" ran %d times (want 1)", ops[i].what,
                  atomic_load(&ops[i].calls));
        t_op_reset(&ops[i]);
    }
    t_log("  %d accepted operations, each called back once; %d unexpected callbacks", op_count,
          atomic_load(&unexpected_callbacks));
    for (int i = 0; i < 4; i++) {
        CHECK_INT(atomic_load(&recs[i]->overlaps), 0);
        t_recorder_destroy(recs[i]);
    }
    return t_finish();
}

/*
 * test_handlers: replacing a client's event handler gives a point after which
 * the old one has stopped (docs/C_API.md, "Threads").
 *
 *  - Replaced from the application's thread while the old handler is inside a
 *    slow call: beckon_client_set_event_handler returns only after that call
 *    has returned, and the old handler is never called again, so its
 *    user_data may be released at once.
 *  - Replaced from inside the handler itself, and from another client's
 *    handler: no deadlock; events go to the new handler afterwards.
 */
#include "common.h"

#define HUB "memory://c-handlers"

typedef struct {
    atomic_int running;
    atomic_int calls;
    long sleep_ms;
} slow_handler;

static void slow_event(void *user_data, const beckon_event *e) {
    (void)e;
    slow_handler *h = user_data;
    atomic_store(&h->running, 1);
    t_changed();
    t_sleep_ms(h->sleep_ms);
    atomic_fetch_add(&h->calls, 1);
    atomic_store(&h->running, 0);
}

static int running_pred(void *arg) { return atomic_load(&((slow_handler *)arg)->running) == 1; }
static int called_pred(void *arg) { return atomic_load(&((slow_handler *)arg)->calls) >= 1; }

static void from_the_application(void) {
    T_SECTION("replaced from the application while the old handler runs");
    beckon_client *client = t_client_new(HUB, "replace-app", BECKON_DISPATCH_THREAD);
    slow_handler old_handler = {.sleep_ms = 300};
    slow_handler new_handler = {.sleep_ms = 0};
    REQUIRE_CODE(beckon_client_set_event_handler(client, slow_event, &old_handler), BECKON_OK, NULL);
    t_op login;
    t_op_init(&login, "login", NULL);
    REQUIRE_CODE(beckon_client_login(client, "replace-app", NULL, t_on_result, &login), BECKON_OK, NULL);
    REQUIRE(t_wait_until(running_pred, &old_handler, t_timeout_ms()));

    REQUIRE_CODE(beckon_client_set_event_handler(client, slow_event, &new_handler), BECKON_OK, NULL);
    CHECK_MSG(atomic_load(&old_handler.running) == 0, "the old handler still runs after the replacement returned");
    int old_calls = atomic_load(&old_handler.calls);
    CHECK_INT(old_calls, 1);

    CHECK_OP(&login, BECKON_OK, NULL);
    CHECK_MSG(t_wait_until(called_pred, &new_handler, t_timeout_ms()), "the new handler got the next event");
    CHECK_INT(atomic_load(&old_handler.calls), old_calls);
    beckon_client_free(client);
    CHECK_INT(atomic_load(&old_handler.calls), old_calls);
}

typedef struct {
    beckon_client *target; /* whose handler this one replaces */
    slow_handler *replacement;
    atomic_int replaced;
    atomic_int *inside; /* NULL, or a rendezvous: wait until 2 handlers are in */
} replacing_handler;

static void replace_event(void *user_data, const beckon_event *e) {
    (void)e;
    replacing_handler *h = user_data;
    if (atomic_fetch_add(&h->replaced, 1) != 0) return;
    if (h->inside != NULL) {
        /* Both handlers inside their calls at once, then each replaces the
         * other's: waiting for each other would deadlock. */
        atomic_fetch_add(h->inside, 1);
        long until = t_now_ms() + t_timeout_ms();
        while (atomic_load(h->inside) < 2 && t_now_ms() < until) t_sleep_ms(1);
    }
    beckon_error rc = beckon_client_set_event_handler(h->target, slow_event, h->replacement);
    if (rc != BECKON_OK) T_FAIL("replacing from a handler: %s", beckon_error_name(rc));
    t_changed();
}

static int replaced_pred(void *arg) { return atomic_load(&((replacing_handler *)arg)->replaced) >= 1; }

static void from_inside_handlers(void) {
    T_SECTION("replaced from inside its own handler");
    beckon_client *self = t_client_new(HUB, "replace-self", BECKON_DISPATCH_THREAD);
    slow_handler after = {.sleep_ms = 0};
    replacing_handler own = {.target = self, .replacement = &after};
    REQUIRE_CODE(beckon_client_set_event_handler(self, replace_event, &own), BECKON_OK, NULL);
    t_login(self, "replace-self", NULL, NULL);
    CHECK(t_wait_until(replaced_pred, &own, t_timeout_ms()));
    CHECK_MSG(t_wait_until(called_pred, &after, t_timeout_ms()), "the new handler got a later event");

    T_SECTION("replaced from another client's handler, both at once");
    beckon_client *x = t_client_new(HUB, "replace-x", BECKON_DISPATCH_THREAD);
    beckon_client *y = t_client_new(HUB, "replace-y", BECKON_DISPATCH_THREAD);
    slow_handler x_after = {.sleep_ms = 0}, y_after = {.sleep_ms = 0};
    atomic_int inside = 0;
    replacing_handler x_replaces_y = {.target = y, .replacement = &y_after, .inside = &inside};
    replacing_handler y_replaces_x = {.target = x, .replacement = &x_after, .inside = &inside};
    REQUIRE_CODE(beckon_client_set_event_handler(x, replace_event, &x_replaces_y), BECKON_OK, NULL);
    REQUIRE_CODE(beckon_client_set_event_handler(y, replace_event, &y_replaces_x), BECKON_OK, NULL);
    t_op x_login, y_login;
    t_op_init(&x_login, "x login", NULL);
    t_op_init(&y_login, "y login", NULL);
    REQUIRE_CODE(beckon_client_login(x, "replace-x", NULL, t_on_result, &x_login), BECKON_OK, NULL);
    REQUIRE_CODE(beckon_client_login(y, "replace-y", NULL, t_on_result, &y_login), BECKON_OK, NULL);
    CHECK_OP(&x_login, BECKON_OK, NULL);
    CHECK_OP(&y_login, BECKON_OK, NULL);
    CHECK(t_wait_until(replaced_pred, &x_replaces_y, t_timeout_ms()));
    CHECK(t_wait_until(replaced_pred, &y_replaces_x, t_timeout_ms()));
    beckon_client_free(x);
    beckon_client_free(y);
    beckon_client_free(self);
}

int main(void) {
    t_start("test_handlers");
    from_the_application();
    from_inside_handlers();
    return t_finish();
}

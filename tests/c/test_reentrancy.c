/*
 * test_reentrancy: callbacks that call the API again, and callbacks that free
 * their own client.
 *
 *  1. from inside an event handler: send an invitation and accept the one
 *     being received; their callbacks run later, one at a time, never nested;
 *  2. from inside an operation callback: log in another client; create, log
 *     in and free a third client;
 *  3. thread mode: a callback never runs on the thread that made the call
 *     (main, or another application thread); callbacks run in call order;
 *  4. a callback frees its own client (from an operation callback, then from
 *     an event handler): no deadlock, the callbacks still pending run with
 *     SHUTDOWN nested inside that free call, nothing runs afterwards;
 *  5. poll mode: callbacks wait for beckon_client_poll and run on the polling
 *     thread; poll runs what was queued when it started; poll from inside a
 *     callback returns a negative error; a poll timeout is honoured;
 *  6. poll mode: a callback (operation, then event handler) frees its own
 *     client while beckon_client_poll is running it.
 *
 * With BECKON_TEST_SERVER_URL set, the same runs against a beckon-server (users
 * suffixed per run). Results then come a round trip after the call, so where a
 * memory:// run polls once (or with timeout 0), the network run polls until the
 * expected callback ran, bounded; "one poll runs the whole login" is SKIPped.
 */
#include "common.h"

#define HUB "memory://c-reentrancy"

/* ---- scenario state for the free-from-callback cases ------------------------------- */

typedef struct nop nop;
struct nop {
    const char *name;
    atomic_int calls;
    atomic_int error;
    atomic_int after_free;  /* ran after the nested free returned */
    atomic_int during_free; /* ran while the nested free was running */
    pthread_t thread;
    void (*action)(nop *self);
};

static beckon_client *victim;           /* the client the scenario frees from a callback */
static atomic_int victim_in_free;       /* the nested free is running */
static atomic_int victim_freed;         /* the nested free returned */
static pthread_t victim_free_thread;
static t_counter gate_blocked, gate_released, free_done;

static void nop_init(nop *n, const char *name, void (*action)(nop *)) {
    memset(n, 0, sizeof *n);
    n->name = name;
    atomic_store(&n->error, -1);
    n->action = action;
}

static void nop_ran(nop *n, beckon_error error) {
    int calls = atomic_fetch_add(&n->calls, 1) + 1;
    if (calls > 1) T_FAIL("%s: callback ran %d times", n->name, calls);
    atomic_store(&n->error, error);
    n->thread = pthread_self();
    if (atomic_load(&victim_freed)) {
        atomic_fetch_add(&n->after_free, 1);
        T_FAIL("%s: callback ran after its client was freed", n->name);
    }
    if (atomic_load(&victim_in_free)) atomic_fetch_add(&n->during_free, 1);
    t_changed();
    if (n->action) n->action(n);
}

static void nop_result(void *ud, const beckon_result *r) { nop_ran(ud, r->error); }

static void scenario_reset(beckon_client *client) {
    victim = client;
    atomic_store(&victim_in_free, 0);
    atomic_store(&victim_freed, 0);
    t_counter_destroy(&gate_blocked);
    t_counter_destroy(&gate_released);
    t_counter_destroy(&free_done);
    t_counter_init(&gate_blocked);
    t_counter_init(&gate_released);
    t_counter_init(&free_done);
}

static void free_victim_here(const char *where) {
    t_log("  %s: freeing its own client", where);
    atomic_store(&victim_in_free, 1);
    victim_free_thread = pthread_self();
    beckon_client_free(victim);
    atomic_store(&victim_in_free, 0);
    atomic_store(&victim_freed, 1);
    t_log("  %s: beckon_client_free returned", where);
    t_counter_add(&free_done, 1);
}

static void action_gate(nop *n) {
    (void)n;
    t_counter_add(&gate_blocked, 1);
    if (!t_counter_wait(&gate_released, 1, t_timeout_ms())) {
        T_FAIL("gate never released");
        t_abort();
    }
}

static void action_free_victim(nop *n) { free_victim_here(n->name); }

static void unknown_id(char *buf, size_t n, int i) { snprintf(buf, n, "%032x", 0x5eed00 + i); }

static void issue_nop(beckon_client *c, nop *n, int i) {
    char id[40];
    unknown_id(id, sizeof id, i);
    REQUIRE_CODE(beckon_accept_invitation(c, id, NULL, nop_result, n), BECKON_OK, NULL);
}

/* ---- 1. API calls from inside an event handler ------------------------------------------ */

static t_op bob_send_from_handler, bob_accept_from_handler;
static atomic_int bob_hook_calls;

static void bob_hook(t_recorder *rec, const beckon_event *e) {
    if (e->kind != BECKON_EVENT_INVITATION_RECEIVED || strcmp(e->inviter, t_user("alice")) != 0) return;
    if (atomic_fetch_add(&bob_hook_calls, 1) != 0) return;
    const char *to[] = {t_user("alice")};
    beckon_invitation_config cfg = t_invitation(30, "calling you back");
    beckon_error rc = beckon_send_invitation(rec->client, to, 1, &cfg, t_on_send, &bob_send_from_handler);
    CHECK_MSG(rc == BECKON_OK, "send from the handler: %s: %s", beckon_error_name(rc), beckon_last_error_message());
    rc = beckon_accept_invitation(rec->client, e->invitation_id, "accepted in handler", t_on_result,
                                  &bob_accept_from_handler);
    CHECK_MSG(rc == BECKON_OK, "accept from the handler: %s: %s", beckon_error_name(rc),
              beckon_last_error_message());
    /* their callbacks must not have run yet: this handler is still running */
    CHECK_INT(atomic_load(&bob_send_from_handler.calls), 0);
    CHECK_INT(atomic_load(&bob_accept_from_handler.calls), 0);
}

/* ---- 2. login of other clients from inside a callback ------------------------------------- */

static beckon_client *carol_client;
static t_recorder carol_rec;
static t_op carol_login;
static atomic_int nested_clients_ok;

static void login_carol_hook(void *opp) {
    t_op *op = opp;
    (void)op;
    beckon_error rc = beckon_client_login(carol_client, t_user("carol"), NULL, t_on_result, &carol_login);
    CHECK_MSG(rc == BECKON_OK, "login of carol from alice's callback: %s", beckon_error_name(rc));
    /* a whole client life inside a callback: new, login (waited), free */
    beckon_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.struct_size = sizeof cfg;
    cfg.server_url = t_url(HUB);
    cfg.request_timeout_ms = t_request_timeout_ms();
    beckon_client *tmp = NULL;
    rc = beckon_client_new(&cfg, &tmp);
    CHECK_MSG(rc == BECKON_OK, "client_new inside a callback: %s", beckon_error_name(rc));
    if (rc != BECKON_OK) return;
    t_op tmp_login;
    t_op_init(&tmp_login, "login of a temporary client inside a callback", NULL);
    rc = beckon_client_login(tmp, t_user("temp-user"), NULL, t_on_result, &tmp_login);
    CHECK_MSG(rc == BECKON_OK, "login inside a callback: %s", beckon_error_name(rc));
    if (rc == BECKON_OK) {
        /* another client's callback runs on its own dispatcher: waiting here is fine */
        if (t_wait_until(t_op_done_pred, &tmp_login, t_timeout_ms()))
            CHECK_INT(tmp_login.error, BECKON_OK);
        else
            T_FAIL("the temporary client's login callback never ran");
    }
    beckon_client_free(tmp);
    atomic_store(&nested_clients_ok, 1);
    t_changed();
}

static int nested_ok_pred(void *arg) {
    (void)arg;
    return atomic_load(&nested_clients_ok);
}

/* ---- 3. calls from another application thread ---------------------------------------------- */

typedef struct {
    beckon_client *client;
    t_op op;
    pthread_t caller;
} thread_call;

static void *call_from_thread(void *arg) {
    thread_call *tc = arg;
    tc->caller = pthread_self();
    REQUIRE_CODE(beckon_accept_invitation(tc->client, "0000000000000000000000000000beef", NULL, t_on_result, &tc->op),
                 BECKON_OK, NULL);
    WAIT_OP(&tc->op);
    return NULL;
}

/* ---- 5. poll mode ---------------------------------------------------------------------------------- */

static beckon_client *poll_client;
static t_recorder poll_rec;
static atomic_int poll_inside_result = 1;
static t_op poll_second; /* issued from inside a poll callback */

static void poll_from_callback_hook(void *opp) {
    (void)opp;
    int rc = t_poll(poll_client, 0);
    atomic_store(&poll_inside_result, rc);
    beckon_error e = beckon_accept_invitation(poll_client, "00000000000000000000000000000002", NULL, t_on_result,
                                              &poll_second);
    CHECK_MSG(e == BECKON_OK, "accept from a poll callback: %s", beckon_error_name(e));
}

typedef struct {
    beckon_client *client;
    int timeout_ms;
    int result;
    pthread_t thread;
    atomic_int done;
} poll_job;

static void *poll_thread_main(void *arg) {
    poll_job *job = arg;
    job->thread = pthread_self();
    job->result = t_poll(job->client, job->timeout_ms);
    atomic_store(&job->done, 1);
    t_changed();
    return NULL;
}

static int poll_job_done(void *arg) { return atomic_load(&((poll_job *)arg)->done); }

/* Polls on a helper thread with a bounded wait, so a deadlock fails instead of hanging. */
static int bounded_poll(beckon_client *c, int timeout_ms, pthread_t *ran_on) {
    poll_job job;
    memset(&job, 0, sizeof job);
    job.client = c;
    job.timeout_ms = timeout_ms;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, poll_thread_main, &job) == 0);
    if (!t_wait_until(poll_job_done, &job, t_timeout_ms() + timeout_ms)) {
        T_FAIL("beckon_client_poll did not return (deadlock?)");
        t_abort();
    }
    pthread_join(th, NULL);
    if (ran_on) *ran_on = job.thread;
    return job.result;
}

/* How long a poll that expects work waits for it: on memory:// the work is
 * queued before the call returns; over the network it comes a round trip later. */
static int poll_wait_ms(void) { return t_on_server() ? (int)t_timeout_ms() : 1000; }

static int free_done_pred(void *arg) {
    (void)arg;
    return t_counter_get(&free_done) >= 1;
}

/* Over the network: polls `c` on helper threads until `done(arg)` holds
 * (bounded), and returns how many callbacks ran. Stops right after the poll in
 * which `done` became true, so a poll that freed its client is the last one. */
static int poll_until(beckon_client *c, int (*done)(void *), void *arg) {
    int total = 0;
    long deadline = t_now_ms() + t_timeout_ms();
    for (int round = 0; round < 10000 && !done(arg) && t_now_ms() < deadline; round++) {
        int n = bounded_poll(c, 200, NULL);
        if (n < 0) {
            T_FAIL("beckon_client_poll returned %d", n);
            break;
        }
        total += n;
    }
    CHECK_MSG(done(arg), "timed out after %ld ms polling for the expected callbacks", t_timeout_ms());
    return total;
}

/* A poll-mode login: CONNECTING, CONNECTED and the login's callback, all run by
 * polling. On memory:// one poll runs the three; over the network the last two
 * come a round trip after the first, so the polls go on until the callback ran
 * (on the main thread when `on_main`, else on helper threads). */
static int poll_login(beckon_client *c, t_op *login, int on_main, const char *check) {
    if (!t_on_server()) return on_main ? t_poll(c, 1000) : bounded_poll(c, 1000, NULL);
    t_skip(check, "over the network the welcome comes a round trip after CONNECTING: more than one poll");
    if (!on_main) return poll_until(c, t_op_done_pred, login);
    int total = 0;
    long deadline = t_now_ms() + t_timeout_ms();
    for (int round = 0; round < 10000 && !atomic_load(&login->done) && t_now_ms() < deadline; round++) {
        int n = t_poll(c, 200);
        REQUIRE(n >= 0);
        total += n;
    }
    REQUIRE(atomic_load(&login->done));
    return total;
}

static atomic_int yuri_hook_calls;
static void free_in_event_hook(t_recorder *rec, const beckon_event *e) {
    (void)rec;
    if (e->kind != BECKON_EVENT_INVITATION_RECEIVED) return;
    if (atomic_fetch_add(&yuri_hook_calls, 1) != 0) return;
    free_victim_here("event handler (INVITATION_RECEIVED)");
}

int main(void) {
    t_start("test_reentrancy");
    t_recorder alice, bob;
    t_recorder_init(&alice, "alice", 1024);
    t_recorder_init(&bob, "bob", 1024);
    t_recorder_init(&carol_rec, "carol", 256);
    t_op_init(&bob_send_from_handler, "bob's send from his handler", &bob);
    t_op_init(&bob_accept_from_handler, "bob's accept from his handler", &bob);
    t_op_init(&carol_login, "carol's login from alice's callback", &carol_rec);

    T_SECTION("2. login of another client from inside a callback");
    beckon_client *a = t_client_with_recorder(t_url(HUB), NULL, &alice);
    carol_client = t_client_with_recorder(t_url(HUB), NULL, &carol_rec);
    t_op alice_login;
    t_op_init(&alice_login, "alice's login", &alice);
    alice_login.hook = login_carol_hook;
    REQUIRE_CODE(beckon_client_login(a, t_user("alice"), NULL, t_on_result, &alice_login), BECKON_OK, NULL);
    CHECK_OP(&alice_login, BECKON_OK, NULL);
    CHECK_OP(&carol_login, BECKON_OK, NULL);
    CHECK_MSG(t_wait_until(nested_ok_pred, NULL, t_timeout_ms()),
              "the temporary client's life inside a callback did not finish");
    t_log("  carol logged in from alice's login callback; a temporary client lived and died inside it");

    T_SECTION("1. send and accept from inside an event handler");
    beckon_client *b = t_client_with_recorder(t_url(HUB), NULL, &bob);
    bob.hook = bob_hook;
    t_login(b, t_user("bob"), NULL, &bob);
    const char *to_bob[] = {t_user("bob")};
    beckon_invitation_config cfg = t_invitation(30, "call bob");
    t_op sent;
    t_op_init(&sent, "alice's send to bob", &alice);
    REQUIRE_CODE(beckon_send_invitation(a, to_bob, 1, &cfg, t_on_send, &sent), BECKON_OK, NULL);
    CHECK_OP(&sent, BECKON_OK, NULL);
    CHECK_OP(&bob_send_from_handler, BECKON_OK, NULL);
    CHECK_OP(&bob_accept_from_handler, BECKON_OK, NULL);
    WAIT_EVENTS(&alice, BECKON_EVENT_INVITATION_ACCEPTED, sent.invitation_id, t_user("bob"), -1, 1);
    WAIT_EVENTS(&alice, BECKON_EVENT_INVITATION_RECEIVED, bob_send_from_handler.invitation_id, NULL, -1, 1);
    CHECK_STR(t_find_event(&alice, BECKON_EVENT_INVITATION_ACCEPTED, sent.invitation_id, NULL, -1)->extended_data,
              "accepted in handler");
    CHECK_STR(t_find_event(&alice, BECKON_EVENT_INVITATION_RECEIVED, bob_send_from_handler.invitation_id, NULL, -1)
                  ->inviter,
              t_user("bob"));
    {
        const t_event *rx = t_find_event(&bob, BECKON_EVENT_INVITATION_RECEIVED, sent.invitation_id, NULL, -1);
        REQUIRE(rx != NULL);
        CHECK_MSG(bob_send_from_handler.seq > rx->seq && bob_accept_from_handler.seq > rx->seq,
                  "callbacks of calls made in a handler ran before the handler's event was done");
        CHECK_MSG(bob_send_from_handler.seq < bob_accept_from_handler.seq,
                  "callbacks ran out of call order (send #%ld, accept #%ld)", bob_send_from_handler.seq,
                  bob_accept_from_handler.seq);
    }
    t_log("  bob's handler sent and accepted; both callbacks ran after the handler, in order");

    T_SECTION("3. callbacks never run on the calling thread; they run in call order");
    {
        thread_call tc;
        memset(&tc, 0, sizeof tc);
        tc.client = a;
        t_op_init(&tc.op, "accept called from another thread", &alice);
        pthread_t th;
        REQUIRE(pthread_create(&th, NULL, call_from_thread, &tc) == 0);
        pthread_join(th, NULL);
        CHECK_INT(tc.op.error, BECKON_ERROR_INVITATION_NOT_FOUND);
        CHECK_MSG(!pthread_equal(tc.op.thread, tc.caller), "the callback ran on the thread that made the call");
        CHECK_MSG(!pthread_equal(tc.op.thread, t_main_thread), "the callback ran on the main thread");
        enum { N = 64 };
        static t_op ordered[N];
        for (int i = 0; i < N; i++) {
            t_op_init(&ordered[i], "ordered accept", &alice);
            char id[40];
            unknown_id(id, sizeof id, 100 + i);
            REQUIRE_CODE(beckon_accept_invitation(a, id, NULL, t_on_result, &ordered[i]), BECKON_OK, NULL);
        }
        int in_order = 1;
        for (int i = 0; i < N; i++) {
            WAIT_OP(&ordered[i]);
            if (pthread_equal(ordered[i].thread, t_main_thread)) T_FAIL("ordered[%d] ran on main", i);
            if (i > 0 && ordered[i].seq <= ordered[i - 1].seq) in_order = 0;
        }
        CHECK_MSG(in_order, "callbacks of one client ran out of call order");
        t_log("  %d callbacks ran in call order, none on the calling thread", N);
    }

    T_SECTION("4a. thread mode: an operation callback frees its own client");
    {
        beckon_client *x = t_client_new(t_url(HUB), NULL, BECKON_DISPATCH_THREAD);
        t_login(x, t_user("xavier"), NULL, NULL);
        scenario_reset(x);
        nop gate, freeing, rest[3];
        nop_init(&gate, "gate", action_gate);
        nop_init(&freeing, "operation callback", action_free_victim);
        for (int i = 0; i < 3; i++) nop_init(&rest[i], "pending after the freeing callback", NULL);
        issue_nop(x, &gate, 0);
        WAIT_COUNTER(&gate_blocked, 1, "the gate callback");
        issue_nop(x, &freeing, 1);
        for (int i = 0; i < 3; i++) issue_nop(x, &rest[i], 2 + i);
        t_counter_add(&gate_released, 1);
        WAIT_COUNTER(&free_done, 1, "the nested free to return (deadlock?)");
        t_sleep_ms(t_slow() ? 500 : 100);
        CHECK_INT(atomic_load(&gate.error), BECKON_ERROR_INVITATION_NOT_FOUND);
        CHECK_INT(atomic_load(&freeing.error), BECKON_ERROR_INVITATION_NOT_FOUND);
        for (int i = 0; i < 3; i++) {
            CHECK_INT(atomic_load(&rest[i].calls), 1);
            CHECK_INT(atomic_load(&rest[i].error), BECKON_ERROR_SHUTDOWN);
            CHECK_INT(atomic_load(&rest[i].during_free), 1);
            CHECK_INT(atomic_load(&rest[i].after_free), 0);
            CHECK(pthread_equal(rest[i].thread, victim_free_thread));
        }
        t_log("  the 3 pending callbacks ran with SHUTDOWN inside the nested free; nothing after");
    }

    T_SECTION("4b. thread mode: an event handler frees its own client");
    {
        t_recorder yrec;
        t_recorder_init(&yrec, "yuri", 64);
        beckon_client *y = t_client_with_recorder(t_url(HUB), NULL, &yrec);
        yrec.hook = free_in_event_hook;
        t_login(y, t_user("yuri"), NULL, NULL);
        scenario_reset(y);
        nop gate, rest[2];
        nop_init(&gate, "gate", action_gate);
        for (int i = 0; i < 2; i++) nop_init(&rest[i], "pending after the freeing handler", NULL);
        issue_nop(y, &gate, 10);
        WAIT_COUNTER(&gate_blocked, 1, "the gate callback");
        const char *to_yuri[] = {t_user("yuri")};
        t_op s;
        t_op_init(&s, "alice's send to yuri", &alice);
        REQUIRE_CODE(beckon_send_invitation(a, to_yuri, 1, &cfg, t_on_send, &s), BECKON_OK, NULL);
        CHECK_OP(&s, BECKON_OK, NULL);
        for (int i = 0; i < 2; i++) issue_nop(y, &rest[i], 11 + i);
        t_counter_add(&gate_released, 1);
        WAIT_COUNTER(&free_done, 1, "the nested free in the handler to return (deadlock?)");
        t_sleep_ms(t_slow() ? 500 : 100);
        for (int i = 0; i < 2; i++) {
            CHECK_INT(atomic_load(&rest[i].calls), 1);
            CHECK_INT(atomic_load(&rest[i].error), BECKON_ERROR_SHUTDOWN);
            CHECK_INT(atomic_load(&rest[i].during_free), 1);
            CHECK_INT(atomic_load(&rest[i].after_free), 0);
        }
        CHECK_INT(t_count_events(&yrec, BECKON_EVENT_INVITATION_RECEIVED, NULL, NULL, -1), 1);
        size_t events = t_event_count(&yrec);
        t_sleep_ms(100);
        CHECK_INT(t_event_count(&yrec), events);
        CHECK_INT(atomic_load(&yrec.overlaps), 0);
        t_op_reset(&s);
        t_recorder_destroy(&yrec);
        t_log("  the 2 pending callbacks ran with SHUTDOWN inside the handler's free; nothing after");
    }

    T_SECTION("5. poll mode: callbacks wait for poll, run on the polling thread");
    {
        t_recorder_init(&poll_rec, "polly", 256);
        poll_rec.poll_mode = 1;
        poll_client = t_client_new(t_url(HUB), NULL, BECKON_DISPATCH_POLL);
        poll_rec.client = poll_client;
        REQUIRE_CODE(beckon_client_set_event_handler(poll_client, t_record_event, &poll_rec), BECKON_OK, NULL);
        t_op login;
        t_op_init(&login, "polly's login", &poll_rec);
        REQUIRE_CODE(beckon_client_login(poll_client, t_user("polly"), NULL, t_on_result, &login), BECKON_OK, NULL);
        t_sleep_ms(100);
        CHECK_INT(atomic_load(&login.calls), 0);
        CHECK_INT(t_event_count(&poll_rec), 0);
        int ran = poll_login(poll_client, &login, 1, "one-poll-runs-polly-login");
        t_log("  the login's poll ran %d callbacks", ran);
        CHECK_INT(ran, 3); /* CONNECTING, CONNECTED, the login callback */
        CHECK_INT(atomic_load(&login.calls), 1);
        CHECK_INT(login.error, BECKON_OK);
        CHECK(pthread_equal(login.thread, t_main_thread));
        CHECK_INT(t_event_count(&poll_rec), 2);
        for (size_t i = 0; i < t_event_count(&poll_rec); i++)
            CHECK(pthread_equal(poll_rec.events[i].thread, t_main_thread));

        /* a poll timeout is honoured when nothing is due */
        long t0 = t_now_ms();
        CHECK_INT(t_poll(poll_client, 200), 0);
        long waited = t_now_ms() - t0;
        CHECK_MSG(waited >= 150, "poll(200) returned after %ld ms with nothing due", waited);

        /* poll from inside a callback; a call made there waits for the next poll */
        t_op first;
        t_op_init(&first, "polled accept that polls", &poll_rec);
        first.hook = poll_from_callback_hook;
        t_op_init(&poll_second, "accept issued inside a poll callback", &poll_rec);
        REQUIRE_CODE(beckon_accept_invitation(poll_client, "00000000000000000000000000000001", NULL, t_on_result,
                                              &first),
                     BECKON_OK, NULL);
        CHECK_INT(t_poll(poll_client, poll_wait_ms()), 1);
        CHECK_INT(atomic_load(&first.calls), 1);
        CHECK_INT(atomic_load(&poll_inside_result), -BECKON_ERROR_INVALID_ARGUMENT);
        CHECK_INT(atomic_load(&poll_second.calls), 0); /* queued by a callback: the next poll */
        CHECK_INT(t_poll(poll_client, poll_wait_ms()), 1);
        CHECK_INT(atomic_load(&poll_second.calls), 1);
        CHECK_INT(poll_second.error, BECKON_ERROR_INVITATION_NOT_FOUND);

        /* another thread polls: the callbacks run there; a push wakes a waiting poll */
        const char *to_polly[] = {t_user("polly")};
        t_op s;
        t_op_init(&s, "alice's send to polly", &alice);
        pthread_t poller;
        long t1 = t_now_ms();
        REQUIRE_CODE(beckon_send_invitation(a, to_polly, 1, &cfg, t_on_send, &s), BECKON_OK, NULL);
        int n = bounded_poll(poll_client, 5000, &poller);
        long took = t_now_ms() - t1;
        CHECK_MSG(n >= 1, "poll on another thread ran %d callbacks", n);
        CHECK_MSG(took < 4000, "a queued event did not wake poll (took %ld ms)", took);
        const t_event *rx = t_find_event(&poll_rec, BECKON_EVENT_INVITATION_RECEIVED, NULL, NULL, -1);
        REQUIRE(rx != NULL);
        CHECK(pthread_equal(rx->thread, poller));
        CHECK(!pthread_equal(rx->thread, t_main_thread));
        CHECK_OP(&s, BECKON_OK, NULL);
        CHECK_INT(atomic_load(&poll_rec.overlaps), 0);
        t_op_reset(&s);
        t_log("  poll-mode callbacks ran only inside poll, on the polling thread");
    }

    T_SECTION("6a. poll mode: an operation callback frees its own client during poll");
    {
        scenario_reset(poll_client);
        nop freeing, rest[3];
        nop_init(&freeing, "polled operation callback", action_free_victim);
        for (int i = 0; i < 3; i++) nop_init(&rest[i], "pending after the freeing poll callback", NULL);
        issue_nop(poll_client, &freeing, 20);
        for (int i = 0; i < 3; i++) issue_nop(poll_client, &rest[i], 21 + i);
        /* over the network the results come later: poll until the free ran */
        int n = t_on_server() ? poll_until(poll_client, free_done_pred, NULL) : bounded_poll(poll_client, 0, NULL);
        t_log("  poll returned %d", n);
        CHECK_INT(t_counter_get(&free_done), 1);
        CHECK_INT(atomic_load(&freeing.error), BECKON_ERROR_INVITATION_NOT_FOUND);
        for (int i = 0; i < 3; i++) {
            CHECK_INT(atomic_load(&rest[i].calls), 1);
            CHECK_INT(atomic_load(&rest[i].error), BECKON_ERROR_SHUTDOWN);
            CHECK_INT(atomic_load(&rest[i].during_free), 1);
        }
        poll_client = NULL;
        t_recorder_destroy(&poll_rec);
    }

    T_SECTION("6b. poll mode: an event handler frees its own client during poll");
    {
        t_recorder prec;
        t_recorder_init(&prec, "paula", 64);
        prec.poll_mode = 1;
        beckon_client *p = t_client_new(t_url(HUB), NULL, BECKON_DISPATCH_POLL);
        prec.client = p;
        REQUIRE_CODE(beckon_client_set_event_handler(p, t_record_event, &prec), BECKON_OK, NULL);
        t_op login;
        t_op_init(&login, "paula's login", &prec);
        REQUIRE_CODE(beckon_client_login(p, t_user("paula"), NULL, t_on_result, &login), BECKON_OK, NULL);
        CHECK_INT(poll_login(p, &login, 0, "one-poll-runs-paula-login"), 3);
        CHECK_INT(login.error, BECKON_OK);
        prec.hook = free_in_event_hook;
        atomic_store(&yuri_hook_calls, 0);
        scenario_reset(p);
        const char *to_paula[] = {t_user("paula")};
        t_op s;
        t_op_init(&s, "alice's send to paula", &alice);
        REQUIRE_CODE(beckon_send_invitation(a, to_paula, 1, &cfg, t_on_send, &s), BECKON_OK, NULL);
        CHECK_OP(&s, BECKON_OK, NULL);
        nop rest[2];
        for (int i = 0; i < 2; i++) {
            nop_init(&rest[i], "pending after the freeing poll handler", NULL);
            issue_nop(p, &rest[i], 30 + i);
        }
        int n = t_on_server() ? poll_until(p, free_done_pred, NULL) : bounded_poll(p, 0, NULL);
        t_log("  poll returned %d", n);
        CHECK_INT(t_counter_get(&free_done), 1);
        for (int i = 0; i < 2; i++) {
            CHECK_INT(atomic_load(&rest[i].calls), 1);
            CHECK_INT(atomic_load(&rest[i].error), BECKON_ERROR_SHUTDOWN);
            CHECK_INT(atomic_load(&rest[i].during_free), 1);
        }
        t_op_reset(&s);
        t_recorder_destroy(&prec);
    }

    T_SECTION("end");
    beckon_client_free(carol_client);
    beckon_client_free(b);
    beckon_client_free(a);
    CHECK_INT(atomic_load(&alice.overlaps), 0);
    CHECK_INT(atomic_load(&bob.overlaps), 0);
    CHECK_INT(atomic_load(&carol_rec.overlaps), 0);
    t_op_reset(&sent);
    t_op_reset(&bob_send_from_handler);
    t_recorder_destroy(&alice);
    t_recorder_destroy(&bob);
    t_recorder_destroy(&carol_rec);
    return t_finish();
}

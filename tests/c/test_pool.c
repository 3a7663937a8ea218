/*
 * test_pool: BECKON_DISPATCH_POOL, callbacks of many clients on a few shared
 * library threads.
 *
 *  - 150 pairs (300 clients) in pool mode add a handful of threads, not 300.
 *  - Every inviter sends to its partner, who accepts from its event handler on
 *    a pool thread: every send, accept and event arrives, each callback once,
 *    never two callbacks of one client at a time (the recorder checks).
 *  - A client frees itself from its own callback on a pool thread.
 *  - Freeing clients with sends in flight runs each callback exactly once.
 */
#include "common.h"

#include <dirent.h>

#define HUB "memory://c-pool"

static int thread_count(void) {
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL) return -1;
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.') n++;
    closedir(dir);
    return n;
}

typedef struct {
    t_recorder rec;
    beckon_client *client;
    t_op answer;
    atomic_int answered;
    char user[32];
} member;

/* On a pool thread: accept the first invitation from the handler. */
static void accept_hook(t_recorder *rec, const beckon_event *e) {
    member *m = rec->extra;
    if (e->kind != BECKON_EVENT_INVITATION_RECEIVED || atomic_fetch_add(&m->answered, 1) != 0) return;
    beckon_error rc = beckon_accept_invitation(m->client, e->invitation_id, "yes", t_on_result, &m->answer);
    if (rc != BECKON_OK) {
        t_op_no_callback(&m->answer, rc);
        T_FAIL("%s: accept from a pool thread returned %s", m->user, beckon_error_name(rc));
    }
}

static void join(member *m, const char *name, int index) {
    snprintf(m->user, sizeof m->user, "%s%d", name, index);
    t_recorder_init(&m->rec, m->user, 32);
    m->rec.hook = accept_hook;
    m->rec.extra = m;
    atomic_init(&m->answered, 0);
    t_op_init(&m->answer, "accept", &m->rec);
    m->client = t_client_new(HUB, m->user, BECKON_DISPATCH_POOL);
    m->rec.client = m->client;
    REQUIRE_CODE(beckon_client_set_event_handler(m->client, t_record_event, &m->rec), BECKON_OK, NULL);
}

static void many_clients_few_threads(void) {
    T_SECTION("150 pairs in pool mode: every callback once, on a few threads");
    const int pairs = t_loops(150, 20);
    member *inviters = calloc((size_t)pairs, sizeof *inviters);
    member *invitees = calloc((size_t)pairs, sizeof *invitees);
    t_op *sends = calloc((size_t)pairs, sizeof *sends);
    REQUIRE(inviters != NULL && invitees != NULL && sends != NULL);

    /* Warm the library (runtime, pool) with one client first. */
    beckon_client *warm = t_client_new(HUB, "warm", BECKON_DISPATCH_POOL);
    t_login(warm, "warm", NULL, NULL);
    int before = thread_count();
    for (int i = 0; i < pairs; i++) {
        join(&inviters[i], "caller", i);
        join(&invitees[i], "callee", i);
        t_login(inviters[i].client, inviters[i].user, NULL, &inviters[i].rec);
        t_login(invitees[i].client, invitees[i].user, NULL, &invitees[i].rec);
    }
    int after = thread_count();
    t_log("  threads: %d with one pool client, %d with %d more", before, after, 2 * pairs);
    CHECK_MSG(after - before <= 8, "%d pool clients added %d threads", 2 * pairs, after - before);

    for (int i = 0; i < pairs; i++) {
        const char *to[] = {invitees[i].user};
        beckon_invitation_config config = t_invitation(30, NULL);
        t_op_init(&sends[i], "send", &inviters[i].rec);
        REQUIRE_CODE(beckon_send_invitation(inviters[i].client, to, 1, &config, t_on_send, &sends[i]), BECKON_OK,
                     NULL);
    }
    for (int i = 0; i < pairs; i++) {
        CHECK_OP(&sends[i], BECKON_OK, NULL);
        CHECK_OP(&invitees[i].answer, BECKON_OK, NULL);
        WAIT_EVENTS(&inviters[i].rec, BECKON_EVENT_INVITATION_ACCEPTED, sends[i].invitation_id, invitees[i].user,
                    -1, 1);
    }
    for (int i = 0; i < pairs; i++) {
        CHECK_INT(atomic_load(&sends[i].calls), 1);
        CHECK_INT(atomic_load(&invitees[i].answer.calls), 1);
        CHECK_INT(atomic_load(&inviters[i].rec.overlaps), 0);
        CHECK_INT(atomic_load(&invitees[i].rec.overlaps), 0);
    }

    T_SECTION("free with sends in flight: each callback exactly once");
    for (int i = 0; i < pairs; i++) {
        const char *to[] = {invitees[i].user};
        beckon_invitation_config config = t_invitation(30, NULL);
        t_op_reset(&sends[i]);
        t_op_init(&sends[i], "send before free", NULL);
        REQUIRE_CODE(beckon_send_invitation(inviters[i].client, to, 1, &config, t_on_send, &sends[i]), BECKON_OK,
                     NULL);
        beckon_client_free(inviters[i].client);
    }
    for (int i = 0; i < pairs; i++) {
        WAIT_OP(&sends[i]);
        CHECK_INT(atomic_load(&sends[i].calls), 1);
        CHECK_MSG(sends[i].error == BECKON_OK || sends[i].error == BECKON_ERROR_SHUTDOWN,
                  "send before free: %s", beckon_error_name(sends[i].error));
    }
    for (int i = 0; i < pairs; i++) {
        beckon_client_free(invitees[i].client);
        t_op_reset(&sends[i]);
        t_op_reset(&invitees[i].answer);
        t_recorder_destroy(&inviters[i].rec);
        t_recorder_destroy(&invitees[i].rec);
    }
    beckon_client_free(warm);
    free(inviters);
    free(invitees);
    free(sends);
}

static atomic_int freed_inside;

static void free_self(void *user_data, const beckon_result *r) {
    beckon_client **slot = user_data;
    CHECK_INT(r->error, BECKON_OK);
    beckon_client_free(*slot);
    atomic_fetch_add(&freed_inside, 1);
}

static int freed_pred(void *arg) {
    (void)arg;
    return atomic_load(&freed_inside) >= 1;
}

static void free_from_own_callback(void) {
    T_SECTION("a pool client frees itself from its own callback");
    static beckon_client *client;
    client = t_client_new(HUB, "self-freer", BECKON_DISPATCH_POOL);
    REQUIRE_CODE(beckon_client_login(client, "self-freer", NULL, free_self, &client), BECKON_OK, NULL);
    CHECK_MSG(t_wait_until(freed_pred, NULL, t_timeout_ms()), "the free inside the callback returned");
}

int main(void) {
    t_start("test_pool");
    many_clients_few_threads();
    free_from_own_callback();
    return t_finish();
}

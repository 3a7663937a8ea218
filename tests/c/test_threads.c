/*
 * test_threads: 8 application threads sending at once, on one shared client
 * and then on 8 clients, to online invitees who accept from their handlers.
 * Every send callback runs exactly once with OK; every invitation gets exactly
 * one INVITATION_ACCEPTED per invitee; every accept callback runs once with
 * OK; the inviter never sees an event of an invitation before the send result
 * that told it the id (docs/SEMANTICS.md, "Order of events and results").
 *
 * With BECKON_TEST_SERVER_URL set, the same runs against a beckon-server (users
 * suffixed per run). The shared client sends 800 frames at once: the server must
 * allow that burst (scripts/c-tests-server.sh raises its rate limit).
 */
#include "common.h"

#define HUB "memory://c-threads"
#define N_THREADS 8
#define MAX_PER_THREAD 100

/* ---- acceptors ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    beckon_client *client;
    atomic_int received;
    atomic_int accept_calls;
    atomic_int accept_ok;
    atomic_int accept_err;
} acceptor;

static acceptor acceptors[N_THREADS];
static const char *acceptor_names[N_THREADS];

static void on_accepted(void *ud, const beckon_result *r) {
    acceptor *a = ud;
    atomic_fetch_add(&a->accept_calls, 1);
    if (r->error == BECKON_OK)
        atomic_fetch_add(&a->accept_ok, 1);
    else {
        atomic_fetch_add(&a->accept_err, 1);
        T_FAIL("%s: accept failed: %s: %s", a->name, beckon_error_name(r->error), r->error_message);
    }
    t_changed();
}

static void acceptor_event(void *ud, const beckon_event *e) {
    acceptor *a = ud;
    if (e->kind != BECKON_EVENT_INVITATION_RECEIVED) return;
    atomic_fetch_add(&a->received, 1);
    beckon_error rc = beckon_accept_invitation(a->client, e->invitation_id, "ok", on_accepted, a);
    if (rc != BECKON_OK) T_FAIL("%s: accept returned %s", a->name, beckon_error_name(rc));
}

/* ---- inviters ------------------------------------------------------------------- */

#define ID_SET_SIZE 8192 /* power of two, > 2x the invitations of one inviter */

typedef struct {
    const char *name;
    beckon_client *client;
    pthread_mutex_t lock;
    char (*ids)[33];           /* open-addressing set of ids seen in send results */
    int *accepted;             /* INVITATION_ACCEPTED per id slot */
    atomic_int send_calls;
    atomic_int send_ok;
    atomic_int accepted_events;
    atomic_int accepted_unknown; /* ACCEPTED for an id no send result had given yet */
    atomic_int state_events;
    atomic_int early_events;     /* any event of an id before its send result */
} inviter;

typedef struct {
    inviter *inv;
    atomic_int calls;
    int error;
} send_slot;

static unsigned hash_id(const char *id) {
    unsigned h = 2166136261u;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

/* The slot of `id` in the set; inserts it when `insert`. -1 if absent. */
static int id_slot(inviter *inv, const char *id, int insert) {
    unsigned h = hash_id(id) & (ID_SET_SIZE - 1);
    for (int probe = 0; probe < ID_SET_SIZE; probe++) {
        unsigned i = (h + (unsigned)probe) & (ID_SET_SIZE - 1);
        if (inv->ids[i][0] == '\0') {
            if (!insert) return -1;
            snprintf(inv->ids[i], sizeof inv->ids[i], "%s", id);
            return (int)i;
        }
        if (strcmp(inv->ids[i], id) == 0) return (int)i;
    }
    return -1;
}

static void on_sent(void *ud, const beckon_send_result *r) {
    send_slot *s = ud;
    int calls = atomic_fetch_add(&s->calls, 1) + 1;
    if (calls > 1) T_FAIL("a send callback ran %d times", calls);
    s->error = r->error;
    inviter *inv = s->inv;
    atomic_fetch_add(&inv->send_calls, 1);
    if (r->error != BECKON_OK) {
        T_FAIL("%s: send failed: %s: %s", inv->name, beckon_error_name(r->error), r->error_message);
    } else {
        atomic_fetch_add(&inv->send_ok, 1);
        if (r->error_invitee_count != 0) T_FAIL("%s: %zu invitees offline", inv->name, r->error_invitee_count);
        pthread_mutex_lock(&inv->lock);
        id_slot(inv, r->invitation_id, 1);
        pthread_mutex_unlock(&inv->lock);
    }
    t_changed();
}

static void inviter_event(void *ud, const beckon_event *e) {
    inviter *inv = ud;
    if (e->kind != BECKON_EVENT_INVITATION_ACCEPTED && e->kind != BECKON_EVENT_INVITATION_USER_STATE_CHANGED) return;
    pthread_mutex_lock(&inv->lock);
    int slot = id_slot(inv, e->invitation_id, 0);
    if (slot < 0) {
        atomic_fetch_add(&inv->early_events, 1);
        slot = id_slot(inv, e->invitation_id, 1); /* count it anyway */
    }
    if (e->kind == BECKON_EVENT_INVITATION_ACCEPTED) {
        if (slot >= 0) inv->accepted[slot]++;
        if (slot < 0) atomic_fetch_add(&inv->accepted_unknown, 1);
    }
    pthread_mutex_unlock(&inv->lock);
    if (e->kind == BECKON_EVENT_INVITATION_ACCEPTED)
        atomic_fetch_add(&inv->accepted_events, 1);
    else
        atomic_fetch_add(&inv->state_events, 1);
    t_changed();
}

static void inviter_init(inviter *inv, const char *name) {
    memset(inv, 0, sizeof *inv);
    inv->name = name;
    pthread_mutex_init(&inv->lock, NULL);
    inv->ids = calloc(ID_SET_SIZE, sizeof *inv->ids);
    inv->accepted = calloc(ID_SET_SIZE, sizeof *inv->accepted);
    REQUIRE(inv->ids != NULL && inv->accepted != NULL);
    inv->client = t_client_new(t_url(HUB), NULL, BECKON_DISPATCH_THREAD);
    REQUIRE_CODE(beckon_client_set_event_handler(inv->client, inviter_event, inv), BECKON_OK, NULL);
    t_login(inv->client, name, NULL, NULL);
}

static void inviter_destroy(inviter *inv) {
    free(inv->ids);
    free(inv->accepted);
    pthread_mutex_destroy(&inv->lock);
}

/* ---- sending threads --------------------------------------------------------------------- */

static pthread_barrier_t start_line;
static int per_thread;

typedef struct {
    int index;
    inviter *inv;
    send_slot slots[MAX_PER_THREAD];
    int refused;
} sender;

static void *sender_main(void *arg) {
    sender *s = arg;
    const char *to[2] = {acceptor_names[s->index], acceptor_names[(s->index + 1) % N_THREADS]};
    char data[64];
    snprintf(data, sizeof data, "from thread %d", s->index);
    beckon_invitation_config cfg = t_invitation(60, data);
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < per_thread; i++) {
        s->slots[i].inv = s->inv;
        s->slots[i].error = -1;
        beckon_error rc = beckon_send_invitation(s->inv->client, to, 2, &cfg, on_sent, &s->slots[i]);
        if (rc != BECKON_OK) {
            s->refused++;
            T_FAIL("thread %d: send %d returned %s: %s", s->index, i, beckon_error_name(rc),
                   beckon_last_error_message());
        }
    }
    return NULL;
}

typedef struct {
    inviter *inv;
    int sends, accepted, states;
} totals_query;

static int totals_reached(void *arg) {
    totals_query *q = arg;
    return atomic_load(&q->inv->send_calls) >= q->sends && atomic_load(&q->inv->accepted_events) >= q->accepted &&
           atomic_load(&q->inv->state_events) >= q->states;
}

static void check_inviter(inviter *inv, int sends) {
    totals_query q = {inv, sends, 2 * sends, 4 * sends};
    if (!t_wait_until(totals_reached, &q, t_timeout_ms() * 2))
        T_FAIL("%s: timed out: %d of %d send callbacks, %d of %d ACCEPTED events, %d of %d state changes",
               inv->name, atomic_load(&inv->send_calls), sends, atomic_load(&inv->accepted_events), 2 * sends,
               atomic_load(&inv->state_events), 4 * sends);
    /* let anything extra (a duplicate) arrive, then count exactly */
    t_sleep_ms(t_slow() ? 500 : 100);
    CHECK_INT(atomic_load(&inv->send_calls), sends);
    CHECK_INT(atomic_load(&inv->send_ok), sends);
    CHECK_INT(atomic_load(&inv->accepted_events), 2 * sends);
    CHECK_INT(atomic_load(&inv->state_events), 4 * sends); /* RECEIVED and ACCEPTED per invitee */
    pthread_mutex_lock(&inv->lock);
    int ids = 0, bad = 0;
    for (int i = 0; i < ID_SET_SIZE; i++) {
        if (inv->ids[i][0] == '\0') continue;
        ids++;
        if (inv->accepted[i] != 2) {
            bad++;
            if (bad <= 5) T_FAIL("%s: invitation %s got %d ACCEPTED events (want 2)", inv->name, inv->ids[i],
                                 inv->accepted[i]);
        }
    }
    pthread_mutex_unlock(&inv->lock);
    CHECK_INT(ids, sends);
    CHECK_INT(bad, 0);
    int early = atomic_load(&inv->early_events);
    CHECK_MSG(early == 0,
              "%s: %d events of an invitation ran before the send callback that returned its id "
              "(SEMANTICS.md order: results and events reach a client in the order it observed them)",
              inv->name, early);
    t_log("  %s: %d sends, each called back once with OK; %d ACCEPTED (2 per invitation); %d state changes; "
          "%d events before their send result",
          inv->name, sends, atomic_load(&inv->accepted_events), atomic_load(&inv->state_events), early);
}

static void run_senders(inviter *shared, inviter *own, int count) {
    sender *senders = calloc(N_THREADS, sizeof *senders);
    REQUIRE(senders != NULL);
    pthread_t threads[N_THREADS];
    REQUIRE(pthread_barrier_init(&start_line, NULL, N_THREADS + 1) == 0);
    for (int t = 0; t < N_THREADS; t++) {
        senders[t].index = t;
        senders[t].inv = shared ? shared : &own[t];
        REQUIRE(pthread_create(&threads[t], NULL, sender_main, &senders[t]) == 0);
    }
    long t0 = t_now_ms();
    pthread_barrier_wait(&start_line);
    for (int t = 0; t < N_THREADS; t++) pthread_join(threads[t], NULL);
    t_log("  %d threads issued %d sends each in %ld ms", N_THREADS, count, t_now_ms() - t0);
    for (int t = 0; t < N_THREADS; t++) CHECK_INT(senders[t].refused, 0);
    if (shared) {
        check_inviter(shared, N_THREADS * count);
    } else {
        for (int t = 0; t < N_THREADS; t++) check_inviter(&own[t], count);
    }
    for (int t = 0; t < N_THREADS; t++)
        for (int i = 0; i < count; i++)
            if (atomic_load(&senders[t].slots[i].calls) != 1)
                T_FAIL("thread %d send %d: callback ran %d times", t, i, atomic_load(&senders[t].slots[i].calls));
    pthread_barrier_destroy(&start_line);
    free(senders);
}

static void check_acceptors(int expected_each) {
    for (int t = 0; t < N_THREADS; t++) {
        acceptor *a = &acceptors[t];
        CHECK_INT(atomic_load(&a->received), expected_each);
        CHECK_INT(atomic_load(&a->accept_calls), expected_each);
        CHECK_INT(atomic_load(&a->accept_ok), expected_each);
        CHECK_INT(atomic_load(&a->accept_err), 0);
    }
    t_log("  every acceptor received and accepted %d invitations, each accept called back once", expected_each);
}

int main(void) {
    t_start("test_threads");
    per_thread = t_loops(MAX_PER_THREAD, 15);
    for (int t = 0; t < N_THREADS; t++) {
        char base[16];
        snprintf(base, sizeof base, "acceptor%d", t);
        acceptor_names[t] = t_user(base);
        acceptors[t].name = acceptor_names[t];
        acceptors[t].client = t_client_new(t_url(HUB), NULL, BECKON_DISPATCH_THREAD);
        REQUIRE_CODE(beckon_client_set_event_handler(acceptors[t].client, acceptor_event, &acceptors[t]), BECKON_OK,
                     NULL);
        t_login(acceptors[t].client, acceptor_names[t], NULL, NULL);
    }

    T_SECTION("8 threads sending %d invitations each on one shared client", per_thread);
    inviter shared;
    inviter_init(&shared, t_user("shared-inviter"));
    run_senders(&shared, NULL, per_thread);
    /* each acceptor is invited by thread t and thread t-1 */
    {
        long deadline = t_now_ms() + t_timeout_ms();
        for (int t = 0; t < N_THREADS; t++)
            while (atomic_load(&acceptors[t].accept_calls) < 2 * per_thread && t_now_ms() < deadline) t_sleep_ms(5);
    }
    check_acceptors(2 * per_thread);

    T_SECTION("8 threads sending %d invitations each, one client per thread", per_thread);
    inviter own[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        char base[16];
        snprintf(base, sizeof base, "inviter%d", t);
        inviter_init(&own[t], t_user(base));
    }
    run_senders(NULL, own, per_thread);
    {
        long deadline = t_now_ms() + t_timeout_ms();
        for (int t = 0; t < N_THREADS; t++)
            while (atomic_load(&acceptors[t].accept_calls) < 4 * per_thread && t_now_ms() < deadline) t_sleep_ms(5);
    }
    check_acceptors(4 * per_thread);

    beckon_client_free(shared.client);
    inviter_destroy(&shared);
    for (int t = 0; t < N_THREADS; t++) {
        beckon_client_free(own[t].client);
        inviter_destroy(&own[t]);
    }
    for (int t = 0; t < N_THREADS; t++) beckon_client_free(acceptors[t].client);
    return t_finish();
}

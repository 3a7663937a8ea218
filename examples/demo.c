/*
 * The whole invitation flow on the embedded memory:// hub, from C.
 *
 * alice invites bob, carol and dave (dave never logs in) with a 2 s timeout:
 * bob accepts, carol refuses, dave times out. Then alice sends a second
 * invitation and cancels it. Every callback and event is printed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beckon.h"

/* Printing and waiting, shared by the dispatcher threads and main. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int steps_done = 0;
static char last_invitation[64];

static void step(void) {
    pthread_mutex_lock(&lock);
    steps_done++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void wait_for_steps(int n) {
    pthread_mutex_lock(&lock);
    while (steps_done < n) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static void say(const char *who, const char *fmt, const char *a, const char *b) {
    pthread_mutex_lock(&lock);
    printf("[%-5s] ", who);
    printf(fmt, a, b);
    printf("\n");
    fflush(stdout);
    pthread_mutex_unlock(&lock);
}

static void check(beckon_error err, const char *what) {
    if (err != BECKON_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, beckon_error_name(err),
                beckon_last_error_message());
        exit(1);
    }
}

typedef struct {
    const char *name;
    beckon_client *client;
    int answer; /* 1 accept, 2 refuse, 0 nothing */
} user;

static void on_login(void *ud, const beckon_result *r) {
    user *u = ud;
    say(u->name, "login callback: %s%s", beckon_error_name(r->error), r->error_message);
    step();
}

static void on_answer(void *ud, const beckon_result *r) {
    user *u = ud;
    say(u->name, "answer callback: %s%s", beckon_error_name(r->error), r->error_message);
}

static void print_invitees(const char *who, const beckon_invitee *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        say(who, "    invitee %s: %s", list[i].user_id, beckon_invitee_state_name(list[i].state));
}

static void on_event(void *ud, const beckon_event *e) {
    user *u = ud;
    char line[512];
    switch (e->kind) {
    case BECKON_EVENT_CONNECTION_STATE_CHANGED:
        snprintf(line, sizeof line, "state %d, reason %d", e->connection_state, e->connection_reason);
        break;
    case BECKON_EVENT_INVITATION_RECEIVED:
        snprintf(line, sizeof line, "from %s, %u s left, data '%s'", e->inviter, e->seconds_left,
                 e->extended_data);
        break;
    case BECKON_EVENT_INVITATION_USER_STATE_CHANGED:
        snprintf(line, sizeof line, "%s is now %s", e->user_id, beckon_invitee_state_name(e->state));
        break;
    case BECKON_EVENT_INVITATION_ACCEPTED:
    case BECKON_EVENT_INVITATION_REFUSED:
        snprintf(line, sizeof line, "by %s, data '%s'", e->user_id, e->extended_data);
        break;
    case BECKON_EVENT_INVITATION_CANCELLED:
    case BECKON_EVENT_INVITATION_TIMEOUT:
        snprintf(line, sizeof line, "inviter %s", e->inviter);
        break;
    default:
        line[0] = '\0';
    }
    say(u->name, "event %s: %s", beckon_event_kind_name(e->kind), line);
    if (e->kind == BECKON_EVENT_INVITATION_RECEIVED) {
        print_invitees(u->name, e->invitees, e->invitee_count);
        if (u->answer == 1)
            check(beckon_accept_invitation(u->client, e->invitation_id, "see you", on_answer, u), "accept");
        if (u->answer == 2)
            check(beckon_refuse_invitation(u->client, e->invitation_id, "busy", on_answer, u), "refuse");
    }
    if (e->kind == BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT) {
        print_invitees(u->name, e->invitees, e->invitee_count);
        step();
    }
    if (e->kind == BECKON_EVENT_INVITATION_CANCELLED) step();
    if (e->kind == BECKON_EVENT_INVITATION_USER_STATE_CHANGED && e->state == BECKON_INVITEE_CANCELLED &&
        strcmp(e->user_id, u->name) == 0)
        step();
}

static void on_sent(void *ud, const beckon_send_result *r) {
    user *u = ud;
    say(u->name, "send callback: %s, invitation %s", beckon_error_name(r->error), r->invitation_id);
    print_invitees(u->name, r->error_invitees, r->error_invitee_count);
    pthread_mutex_lock(&lock);
    snprintf(last_invitation, sizeof last_invitation, "%s", r->invitation_id);
    pthread_mutex_unlock(&lock);
    step();
}

static void on_cancelled(void *ud, const beckon_cancel_result *r) {
    user *u = ud;
    say(u->name, "cancel callback: %s%s", beckon_error_name(r->error), r->error_message);
    step();
}

static void make_user(user *u, const char *name, int answer) {
    beckon_client_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.server_url = "memory://demo";
    u->name = name;
    u->answer = answer;
    check(beckon_client_new(&config, &u->client), "beckon_client_new");
    check(beckon_client_set_event_handler(u->client, on_event, u), "set_event_handler");
    check(beckon_client_login(u->client, name, NULL, on_login, u), "login");
}

int main(void) {
    if (beckon_abi_version() != BECKON_ABI_VERSION) {
        fprintf(stderr, "header and library disagree on the ABI version\n");
        return 1;
    }
    printf("beckon %s (ABI %u) on memory://demo\n\n", beckon_version(), beckon_abi_version());

    user alice, bob, carol;
    make_user(&alice, "alice", 0);
    make_user(&bob, "bob", 1);
    make_user(&carol, "carol", 2);
    wait_for_steps(3); /* three logins */

    printf("\n--- alice invites bob, carol and dave (offline), 2 s timeout ---\n");
    const char *invitees[] = {"bob", "carol", "dave"};
    beckon_notification_config note;
    memset(&note, 0, sizeof note);
    note.struct_size = sizeof note;
    note.title = "Incoming call";
    note.message = "alice is calling";
    beckon_invitation_config invite;
    memset(&invite, 0, sizeof invite);
    invite.struct_size = sizeof invite;
    invite.timeout_seconds = 2;
    invite.extended_data = "{\"call\":\"video\"}";
    invite.notification = &note;
    check(beckon_send_invitation(alice.client, invitees, 3, &invite, on_sent, &alice), "send");
    wait_for_steps(5); /* the send callback, then dave's response timeout */

    printf("\n--- alice invites bob and carol again, then cancels ---\n");
    bob.answer = 0;
    carol.answer = 0;
    invite.timeout_seconds = 30;
    check(beckon_send_invitation(alice.client, invitees, 2, &invite, on_sent, &alice), "send");
    wait_for_steps(6);
    char id[64];
    pthread_mutex_lock(&lock);
    snprintf(id, sizeof id, "%s", last_invitation);
    pthread_mutex_unlock(&lock);
    check(beckon_cancel_invitation(alice.client, id, NULL, 0, "never mind", on_cancelled, &alice), "cancel");
    /* the cancel callback; bob's and carol's INVITATION_CANCELLED and their own state changes */
    wait_for_steps(11);

    printf("\n--- done ---\n");
    beckon_client_free(alice.client);
    beckon_client_free(bob.client);
    beckon_client_free(carol.client);
    return 0;
}

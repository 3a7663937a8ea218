/*
 * A native peer of the web client's tests: a C program on libbeckon that
 * logs in to the same beckon-server as a browser and
 *   (a) accepts the invitation the browser user sends it, then
 *   (b) invites the browser user, and waits for the answer.
 * It prints one line per step for the test to read:
 *   ready, received ID FROM DATA, accepted ID, sent ID, peer-accepted ID BY DATA, done
 * and "error ..." (exit 1) when something fails. Bounded by alarm().
 *
 * Usage: native_peer URL USER PEER
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "beckon.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int logged_in = 0, answered = 0, peer_answered = 0, logged_out = 0;
static beckon_client *client;

static void line(const char *fmt, const char *a, const char *b, const char *c) {
    pthread_mutex_lock(&lock);
    printf(fmt, a, b, c);
    printf("\n");
    fflush(stdout);
    pthread_mutex_unlock(&lock);
}

static void set(int *flag) {
    pthread_mutex_lock(&lock);
    *flag = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void wait_for(int *flag) {
    pthread_mutex_lock(&lock);
    while (!*flag) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static void fail(const char *what, beckon_error error, const char *message) {
    printf("error %s: %s: %s\n", what, beckon_error_name(error), message ? message : "");
    fflush(stdout);
    exit(1);
}

static void on_login(void *ud, const beckon_result *r) {
    (void)ud;
    if (r->error != BECKON_OK) fail("login", r->error, r->error_message);
    set(&logged_in);
}

static void on_accepted(void *ud, const beckon_result *r) {
    const char *id = ud;
    if (r->error != BECKON_OK) fail("accept", r->error, r->error_message);
    line("accepted %s%s%s", id, "", "");
    set(&answered);
}

static char received_id[64];

static void on_event(void *ud, const beckon_event *e) {
    (void)ud;
    switch (e->kind) {
    case BECKON_EVENT_INVITATION_RECEIVED:
        snprintf(received_id, sizeof received_id, "%s", e->invitation_id);
        line("received %s %s %s", e->invitation_id, e->inviter, e->extended_data);
        {
            beckon_error err = beckon_accept_invitation(client, e->invitation_id, "from-c", on_accepted, received_id);
            if (err != BECKON_OK) fail("accept", err, beckon_last_error_message());
        }
        break;
    case BECKON_EVENT_INVITATION_ACCEPTED:
        line("peer-accepted %s %s %s", e->invitation_id, e->user_id, e->extended_data);
        set(&peer_answered);
        break;
    case BECKON_EVENT_INVITATION_REFUSED:
    case BECKON_EVENT_INVITATION_RESPONSE_TIMEOUT:
        line("error the peer did not accept %s (%s)%s", e->invitation_id, beckon_event_kind_name(e->kind), "");
        exit(1);
    default:
        break;
    }
}

static void on_sent(void *ud, const beckon_send_result *r) {
    (void)ud;
    if (r->error != BECKON_OK) fail("send", r->error, r->error_message);
    line("sent %s%s%s", r->invitation_id, "", "");
}

static void on_logout(void *ud, const beckon_result *r) {
    (void)ud;
    (void)r;
    set(&logged_out);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s URL USER PEER\n", argv[0]);
        return 2;
    }
    alarm(60); /* never outlive the test */
    beckon_client_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.server_url = argv[1];
    beckon_error err = beckon_client_new(&config, &client);
    if (err != BECKON_OK) fail("beckon_client_new", err, beckon_last_error_message());
    beckon_client_set_event_handler(client, on_event, NULL);
    err = beckon_client_login(client, argv[2], "dev", on_login, NULL);
    if (err != BECKON_OK) fail("login", err, beckon_last_error_message());
    wait_for(&logged_in);
    line("ready%s%s%s", "", "", "");

    /* (a) the browser invites us: accepted in on_event. */
    wait_for(&answered);

    /* (b) we invite the browser user. */
    const char *invitees[] = {argv[3]};
    beckon_invitation_config invite;
    memset(&invite, 0, sizeof invite);
    invite.struct_size = sizeof invite;
    invite.timeout_seconds = 30;
    invite.extended_data = "{\"from\":\"c\"}";
    err = beckon_send_invitation(client, invitees, 1, &invite, on_sent, NULL);
    if (err != BECKON_OK) fail("send", err, beckon_last_error_message());
    wait_for(&peer_answered);

    err = beckon_client_logout(client, on_logout, NULL);
    if (err != BECKON_OK) fail("logout", err, beckon_last_error_message());
    wait_for(&logged_out);
    beckon_client_free(client);
    line("done%s%s%s", "", "", "");
    return 0;
}

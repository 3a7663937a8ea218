//! A session between connections: a task of its own that owns the session
//! for the grace period. It keeps appending the hub's pushes to the outbox
//! (a resume replays them), hands the session to a connection that resumes
//! it, and ends it when the grace period passes.

use tokio::time::sleep_until;

use super::Session;

/// Lets `session` wait for a resume on a task of its own; an ended session
/// just goes.
pub fn spawn(session: Box<Session>) {
    if !session.is_ended() {
        tokio::spawn(wait_for_resume(session));
    }
}

async fn wait_for_resume(mut session: Box<Session>) {
    loop {
        let Some(until) = session.grace_until() else {
            return; // ended
        };
        let next = {
            let (mail, _) = session.io();
            tokio::select! {
                mail = mail => Some(mail),
                () = sleep_until(until) => None,
            }
        };
        match next {
            Some(Some(mail)) => {
                if let Some(handoff) = session.mail(mail) {
                    match handoff.give(session) {
                        None => return,
                        // The connection that asked is gone already: wait on.
                        Some(back) => session = back,
                    }
                }
            }
            // No way left to reach the session: nobody can resume it.
            Some(None) => return,
            None => {
                session.abandon();
                return;
            }
        }
    }
}

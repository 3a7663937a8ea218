//! Ctrl-C (SIGINT). The first one is the command's to handle (invite cancels
//! its invitation, listen logs out); a second one leaves at once, in case
//! the server takes its time to answer.

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::failure::Exit;

pub struct Interrupts {
    caught: UnboundedReceiver<()>,
}

impl Interrupts {
    /// Catches Ctrl-C from now on; a second one exits with `forced`.
    pub async fn catch(forced: Exit) -> Interrupts {
        let (sender, caught) = unbounded_channel();
        let mut first = Box::pin(tokio::signal::ctrl_c());
        // ctrl_c installs its handler when first polled: poll it here, so a
        // Ctrl-C from now on reaches the command instead of killing it.
        let early = tokio::select! {
            biased;
            result = &mut first => Some(result),
            _ = std::future::ready(()) => None,
        };
        tokio::spawn(async move {
            let installed = match early {
                Some(result) => result,
                None => first.await,
            };
            if installed.is_err() || sender.send(()).is_err() {
                return;
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nbeckon: interrupted again; leaving now");
                std::process::exit(forced as i32);
            }
        });
        Interrupts { caught }
    }

    /// Resolves at the next Ctrl-C (never, if none can be caught).
    pub async fn next(&mut self) {
        if self.caught.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

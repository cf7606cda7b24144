//! SIGTERM and SIGINT, for a graceful stop.

/// SIGTERM and SIGINT handlers.
pub struct Signals {
    #[cfg(unix)]
    streams: Option<(
        actix_web::rt::signal::unix::Signal,
        actix_web::rt::signal::unix::Signal,
    )>,
}

impl Signals {
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use actix_web::rt::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some((term, int)),
                _ => {
                    log::error!("cannot listen for signals; stop the server with SIGKILL");
                    None
                }
            };
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Waits for the first signal and names it.
    pub async fn recv(self) -> &'static str {
        #[cfg(unix)]
        {
            match self.streams {
                Some((mut term, mut int)) => tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                },
                None => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = actix_web::rt::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

//! The chatdesk server under test, in this process: `Application::build`
//! as `chatdesk serve` runs it (the HTTP server and the delivery worker),
//! on its own thread with its own actix System.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use chatdesk::config::Config;
use chatdesk::Application;

use crate::Result;

type ServerFuture = Pin<Box<dyn Future<Output = std::io::Result<()>>>>;

/// A running chatdesk server; [`Running::stop`] stops it and its worker.
pub(crate) struct Running {
    port: u16,
    handle: ServerHandle,
    thread: thread::JoinHandle<()>,
}

impl Running {
    /// Builds and runs the server on 127.0.0.1 (a free port).
    pub(crate) fn start(config: Config) -> Result<Running> {
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match Application::build(&config, "127.0.0.1:0") {
                    Ok(app) => {
                        let _ = tx.send(Ok((app.port(), app.handle())));
                        let run: ServerFuture = Box::pin(app.run());
                        if let Err(e) = run.await {
                            eprintln!("the server stopped with an error: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let (port, handle) = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the server did not start within 60 s")??;
        Ok(Running {
            port,
            handle,
            thread,
        })
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (its delivery worker stops after its current
    /// send) and waits for its thread.
    pub(crate) fn stop(self) {
        let handle = self.handle;
        let _ = thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(true));
        })
        .join();
        let _ = self.thread.join();
    }
}

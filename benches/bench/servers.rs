//! The servers measured: a bare actix-web baseline and chatdesk itself,
//! each on its own thread with its own actix System.

use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use chatdesk::config::Config;
use chatdesk::Application;

use crate::Result;

type ServerFuture = Pin<Box<dyn Future<Output = std::io::Result<()>>>>;

/// A server running on its own thread with its own actix System.
pub(crate) struct Running {
    port: u16,
    handle: ServerHandle,
    thread: thread::JoinHandle<()>,
}

impl Running {
    /// Builds the server inside a fresh actix System on a new thread.
    fn spawn<F>(build: F) -> Result<Running>
    where
        F: FnOnce() -> Result<(u16, ServerHandle, ServerFuture), String> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match build() {
                    Ok((port, handle, server)) => {
                        let _ = tx.send(Ok((port, handle)));
                        if let Err(e) = server.await {
                            eprintln!("server stopped with an error: {e}");
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
            .map_err(|_| "a server did not start within 60 s")??;
        Ok(Running {
            port,
            handle,
            thread,
        })
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server and waits for its thread.
    pub(crate) fn stop(self) {
        let handle = self.handle;
        let _ = thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(true));
        })
        .join();
        let _ = self.thread.join();
    }
}

async fn hello() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"message": "hello"}))
}

/// The baseline: actix-web with one trivial JSON handler and nothing else.
pub(crate) fn bare_server(workers: usize) -> Result<Running> {
    Running::spawn(move || {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let server = HttpServer::new(|| App::new().route("/hello", web::get().to(hello)))
            .workers(workers)
            .listen(listener)
            .map_err(|e| e.to_string())?
            .run();
        let handle = server.handle();
        Ok((port, handle, Box::pin(server) as ServerFuture))
    })
}

/// `serve`'s configuration for a database, with mail log-only, no model
/// and `workers` server workers.
pub(crate) fn config_for(database_url: &str, workers: usize) -> Result<Config> {
    let mut config = Config::from_env(Some(database_url.to_string()))?;
    config.smtp_url = None;
    config.resend_api_key = None;
    config.llm = None;
    config.workers = Some(workers);
    Ok(config)
}

/// The real server, as `chatdesk serve` builds it.
pub(crate) fn chatdesk_server(config: Config) -> Result<Running> {
    Running::spawn(move || {
        let app = Application::build(&config, "127.0.0.1:0")?;
        let (port, handle) = (app.port(), app.handle());
        Ok((port, handle, Box::pin(app.run()) as ServerFuture))
    })
}

//! The servers measured, each a child process on the servers' cores (see
//! `serve.rs`): a bare actix-web baseline (this program again, started
//! with `BENCH_BARE_SERVER_WORKERS`) and `chatdesk serve`, the release
//! binary cargo built with this bench. Their CPU time and peak RSS are
//! read from `/proc/<pid>`, apart from the load generator's.

use std::net::TcpListener;

use actix_web::{web, App, HttpResponse, HttpServer};
use chatdesk::config::Config;

use crate::serve::{Child, Cores, Serve};
use crate::Result;

/// The environment variable that makes this program the bare server.
pub(crate) const BARE_SERVER: &str = "BENCH_BARE_SERVER_WORKERS";
/// What the bare server prints when it listens.
const BARE_LISTENING: &str = "bare actix-web server on ";

async fn hello() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"message": "hello"}))
}

/// Runs as the bare server (in the child process) until killed: actix-web
/// with one trivial JSON handler and nothing else.
pub(crate) fn run_bare_server(workers: &str) -> Result<()> {
    let workers: usize = workers.parse()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| App::new().route("/hello", web::get().to(hello)))
            .workers(workers)
            .listen(listener)?
            .run();
        eprintln!("{BARE_LISTENING}http://127.0.0.1:{port}");
        server.await
    })?;
    Ok(())
}

/// The baseline in a child process.
pub(crate) fn bare_server(cores: &Cores, workers: usize) -> Result<Child> {
    let exe = std::env::current_exe()?;
    let mut command = cores.server_command(&exe.to_string_lossy());
    command.env(BARE_SERVER, workers.to_string());
    Child::start(command, BARE_LISTENING, "bare")
}

/// `serve`'s configuration for a database, with mail log-only and no
/// model: what the bench seeds through (the server reads the same
/// database).
pub(crate) fn config_for(database_url: &str) -> Result<Config> {
    let mut config = Config::from_env(Some(database_url.to_string()))?;
    config.smtp_url = None;
    config.resend_api_key = None;
    config.llm = None;
    Ok(config)
}

/// `chatdesk serve` in a child process on `database_url`, with `workers`
/// workers; `log` is its `RUST_LOG` (`warn` keeps the request log off).
pub(crate) fn chatdesk_server(
    cores: &Cores,
    database_url: &str,
    workers: usize,
    log: &str,
    tag: &str,
) -> Result<Child> {
    Child::serve(
        cores,
        Serve {
            database_url,
            workers,
            log,
            env: Vec::new(),
            tag,
        },
    )
}

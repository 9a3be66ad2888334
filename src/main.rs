//! `chatdesk`: serve the API, migrate the database, manage tenants.

use std::process::ExitCode;

use chatdesk::config::Config;
use chatdesk::{demo, telemetry, Application};
use chatdesk_domain::ids::TenantId;
use chatdesk_domain::tenant::{Plan, Tenant};
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "chatdesk",
    version,
    about = "The backend of an AI help widget and the support-ticket path behind it"
)]
struct Cli {
    /// Database: postgres://…, postgresql://… or sqlite://PATH
    /// [default: sqlite://./data/chatdesk.sqlite3]
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (runs pending migrations first).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
        bind: String,
        /// Run the demo: seed a demo tenant into an empty database (or
        /// issue its credentials again), print how to sign in, and serve a
        /// customer's page embedding the widget. A database holding any
        /// other tenant is left untouched.
        #[arg(
            long,
            env = "CHATDESK_DEMO",
            action = clap::ArgAction::SetTrue,
            value_parser = clap::builder::FalseyValueParser::new()
        )]
        demo: bool,
        /// Address the demo page listens on (with --demo).
        #[arg(long, env = "DEMO_BIND_ADDR", default_value = chatdesk::demo::DEFAULT_PAGE_BIND)]
        demo_bind: String,
    },
    /// Run pending migrations and exit.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant and its owner; prints {"tenantId", "ownerMemberId", "token"}.
    Create {
        /// Tenant name.
        #[arg(long)]
        name: String,
        /// FREE, STARTER, PRO or ENTERPRISE.
        #[arg(long, value_parser = parse_plan)]
        plan: Plan,
        /// The owner's email.
        #[arg(long)]
        owner_email: String,
    },
    /// Change a tenant's plan.
    SetPlan {
        /// Tenant id.
        #[arg(value_parser = parse_tenant_id)]
        tenant_id: TenantId,
        /// FREE, STARTER, PRO or ENTERPRISE.
        #[arg(value_parser = parse_plan)]
        plan: Plan,
    },
    /// Add AI credits to a tenant (a negative number removes credits).
    AddCredits {
        /// Tenant id.
        #[arg(value_parser = parse_tenant_id)]
        tenant_id: TenantId,
        /// Credits to add.
        #[arg(allow_negative_numbers = true)]
        credits: i64,
    },
}

fn parse_plan(raw: &str) -> Result<Plan, String> {
    raw.trim().to_ascii_uppercase().parse()
}

fn parse_tenant_id(raw: &str) -> Result<TenantId, String> {
    raw.trim()
        .parse()
        .map_err(|_| "must be a tenant id (a UUID)".to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    telemetry::init(Config::log_format(), default_filter);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("chatdesk: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let config = Config::from_env(cli.database_url)?;
    match cli.command {
        Command::Serve {
            bind,
            demo,
            demo_bind,
        } => serve(&config, &bind, demo.then_some(demo_bind.as_str())),
        Command::Migrate => {
            chatdesk::open_store(&config)?;
            eprintln!("chatdesk: database is up to date");
            Ok(())
        }
        Command::Tenant(command) => tenant(&config, command),
    }
}

fn serve(config: &Config, bind: &str, demo_bind: Option<&str>) -> Result<(), String> {
    // The demo is made (or its credentials issued) before the server
    // starts, so the server's caches never hold a state from before it.
    let demo = match demo_bind {
        Some(_) => Some(demo::prepare(config)?),
        None => None,
    };
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let app = Application::build(config, bind)?;
        let base = api_base(bind, app.port());
        tracing::info!(%base, "chatdesk is listening");
        let page = match (&demo, demo_bind) {
            (Some(demo::Prepared::Ready(access)), Some(page_bind)) => match &access.site {
                Some(site) => Some(demo_page(page_bind, &base, &site.key)?),
                None => None,
            },
            _ => None,
        };
        match &demo {
            Some(demo::Prepared::Ready(access)) => {
                print_demo(&base, access, page.as_ref().map(|(_, port)| *port));
            }
            Some(demo::Prepared::Untouched { tenants_seen }) => {
                tracing::warn!(
                    tenants_seen,
                    "demo: the database holds tenants other than the demo's, so nothing was \
                     seeded or changed and no demo page is served (a fresh database, e.g. after \
                     `make clean-data`, gets the demo)"
                );
                print_plain(&base);
            }
            None => print_plain(&base),
        }
        let page = page.map(|(server, _)| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let served = app.run().await;
        if let Some(page) = page {
            page.stop(true).await;
        }
        served.map_err(|e| format!("server failed: {e}"))
    })
}

/// The API's base URL as a browser on this machine reaches it.
fn api_base(bind: &str, port: u16) -> String {
    let host = bind.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" => "[::1]",
        other => other,
    };
    format!("http://{host}:{port}")
}

/// Binds and builds the demo page's server; returns it with its port.
fn demo_page(
    bind: &str,
    api_base: &str,
    site_key: &str,
) -> Result<(actix_web::dev::Server, u16), String> {
    let listener = std::net::TcpListener::bind(bind).map_err(|e| {
        format!(
            "cannot listen on {bind} for the demo page: {e} (set DEMO_BIND_ADDR or --demo-bind)"
        )
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot read the demo page's address: {e}"))?
        .port();
    let server = demo::page::serve(listener, api_base, site_key)
        .map_err(|e| format!("cannot start the demo page: {e}"))?;
    Ok((server, port))
}

fn print_plain(base: &str) {
    eprintln!(
        "\nchatdesk is serving on {base}\n\
         Try it:\n  \
         curl {base}/healthz\n  \
         TOKEN=$(./target/debug/chatdesk tenant create --name Acme --plan PRO --owner-email you@example.com | sed -E 's/.*\"token\":\"([^\"]+)\".*/\\1/')\n  \
         curl -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/me\n\
         The API document is at {base}/api/v1/openapi.json; stop with Ctrl-C.\n"
    );
}

/// How to use the demo. The owner's token and the site's key are printed
/// on stdout, as `tenant create` prints a token, and never logged.
fn print_demo(base: &str, access: &demo::DemoAccess, page_port: Option<u16>) {
    let tenant = &access.tenant;
    let token = &access.owner_token;
    let mut out = String::new();
    out.push_str(&format!(
        "\nchatdesk is serving on {base} with the demo: tenant \"{}\" ({}, {} credits), \
         its owner {}.\n",
        tenant.name,
        tenant.plan.as_str(),
        tenant.credits,
        demo::OWNER_EMAIL
    ));
    if !access.seeded {
        out.push_str(
            "The demo was seeded before; this start issued its owner a new token and its site \
             a new key (only their hashes are kept): the ones printed before no longer work.\n",
        );
    }
    out.push_str(&format!(
        "\nSign in to the dashboard API as the owner with this header:\n  \
         Authorization: Bearer {token}\n\nTry it:\n  \
         TOKEN={token}\n  \
         curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/me\n  \
         curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/sites\n"
    ));
    match (&access.site, page_port) {
        (Some(site), Some(port)) => out.push_str(&format!(
            "  SITE_ID={}\n  \
             curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/sites/$SITE_ID/conversations\n  \
             curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/sites/$SITE_ID/tickets\n\n\
             The demo site's widget key: {}\n\
             A customer's page with the widget: http://localhost:{port}/\n\
             Ask it, e.g., \"{}\"\n",
            site.id,
            site.key,
            demo::QUESTIONS_TO_TRY[0],
        )),
        _ => out.push_str(
            "The demo site (domain localhost) was deleted, so no demo page is served; \
             `make clean-data` starts the demo afresh.\n",
        ),
    }
    out.push_str(&format!(
        "\nThe API document is at {base}/api/v1/openapi.json; stop with Ctrl-C.\n"
    ));
    print!("{out}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

fn tenant_json(tenant: &Tenant) -> serde_json::Value {
    json!({
        "tenantId": tenant.id,
        "name": tenant.name,
        "plan": tenant.plan,
        "credits": tenant.credits,
    })
}

fn tenant(config: &Config, command: TenantCommand) -> Result<(), String> {
    let app = chatdesk::tenancy(&std::sync::Arc::new(chatdesk::open_store(config)?));
    let output = match command {
        TenantCommand::Create {
            name,
            plan,
            owner_email,
        } => {
            let created = app
                .create_tenant(&name, plan, &owner_email)
                .map_err(|e| chatdesk::describe_error(&e))?;
            json!({
                "tenantId": created.tenant.id,
                "ownerMemberId": created.owner.id,
                "token": created.token,
            })
        }
        TenantCommand::SetPlan { tenant_id, plan } => tenant_json(
            &app.set_plan(tenant_id, plan)
                .map_err(|e| chatdesk::describe_error(&e))?,
        ),
        TenantCommand::AddCredits { tenant_id, credits } => tenant_json(
            &app.add_credits(tenant_id, credits)
                .map_err(|e| chatdesk::describe_error(&e))?,
        ),
    };
    println!("{output}");
    Ok(())
}

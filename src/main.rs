//! `chatdesk`: serve the API, migrate the database, manage tenants.

use std::process::ExitCode;

use chatdesk::config::Config;
use chatdesk::{telemetry, Application};
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
        Command::Serve { bind } => serve(&config, &bind),
        Command::Migrate => {
            chatdesk::open_store(&config)?;
            eprintln!("chatdesk: database is up to date");
            Ok(())
        }
        Command::Tenant(command) => tenant(&config, command),
    }
}

fn serve(config: &Config, bind: &str) -> Result<(), String> {
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let app = Application::build(config, bind)?;
        let host = bind.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
        let base = format!("http://{host}:{}", app.port());
        tracing::info!(%base, "chatdesk is listening");
        eprintln!(
            "\nchatdesk is serving on {base}\n\
             Try it:\n  \
             curl {base}/healthz\n  \
             TOKEN=$(./target/debug/chatdesk tenant create --name Acme --plan PRO --owner-email you@example.com | sed -E 's/.*\"token\":\"([^\"]+)\".*/\\1/')\n  \
             curl -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/me\n\
             The API document is at {base}/api/v1/openapi.json; stop with Ctrl-C.\n"
        );
        app.run().await.map_err(|e| format!("server failed: {e}"))
    })
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
                .map_err(describe)?;
            json!({
                "tenantId": created.tenant.id,
                "ownerMemberId": created.owner.id,
                "token": created.token,
            })
        }
        TenantCommand::SetPlan { tenant_id, plan } => {
            tenant_json(&app.set_plan(tenant_id, plan).map_err(describe)?)
        }
        TenantCommand::AddCredits { tenant_id, credits } => {
            tenant_json(&app.add_credits(tenant_id, credits).map_err(describe)?)
        }
    };
    println!("{output}");
    Ok(())
}

fn describe(err: chatdesk_domain::Error) -> String {
    let fields = err.field_errors();
    if fields.is_empty() {
        err.to_string()
    } else {
        let list: Vec<String> = fields.iter().map(ToString::to_string).collect();
        format!("{err}: {}", list.join("; "))
    }
}

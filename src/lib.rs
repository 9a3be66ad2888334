//! The chatdesk binary's library: configuration, logging, and wiring the
//! real adapters (store, mail) into the API. Black-box tests in `tests/`
//! start the server through [`Application`].

pub mod config;
pub mod demo;
pub mod telemetry;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chatdesk_api::{ApiConfig, Services};
use chatdesk_domain::ports::{AnswerModel, Clock, IdGenerator, RandomIds, SystemClock};
use chatdesk_domain::services::{
    ContentService, ConversationService, DeliveryService, IdempotencyService, OperatorService,
    RankerChoice, SiteService, TenancyService, TicketService, VisitorService, WidgetService,
};
use chatdesk_store::Store;

pub use config::Config;

/// A domain error for the command line, with the fields it names.
pub fn describe_error(err: &chatdesk_domain::Error) -> String {
    let fields = err.field_errors();
    if fields.is_empty() {
        err.to_string()
    } else {
        let list: Vec<String> = fields.iter().map(ToString::to_string).collect();
        format!("{err}: {}", list.join("; "))
    }
}

/// Opens the database and runs pending migrations, logging what ran.
pub fn open_store(config: &Config) -> Result<Store, String> {
    let url = chatdesk_domain::secret::redact_url(&config.database_url);
    let store = Store::open(&config.database_url, config.pool_size)
        .map_err(|e| format!("cannot open the database {url}: {e}"))?;
    let applied = store
        .run_migrations()
        .map_err(|e| format!("cannot migrate the database {url}: {e}"))?;
    if applied.is_empty() {
        tracing::info!(database = %url, "database schema is up to date");
    } else {
        tracing::info!(database = %url, migrations = ?applied, "applied migrations");
    }
    Ok(store)
}

/// Tenants and members over the real adapters (also what the CLI uses).
pub fn tenancy(store: &Arc<Store>) -> TenancyService {
    TenancyService::new(clock(), ids(), store.clone(), store.clone())
}

/// Every tenant as the operator sees them, over the real adapters.
pub fn operator(store: &Arc<Store>) -> OperatorService {
    OperatorService::new(ids(), store.clone(), store.clone())
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

fn ids() -> Arc<dyn IdGenerator> {
    Arc::new(RandomIds)
}

/// The model adapter of the settings, if a model is configured.
pub fn model(config: &Config) -> Result<Option<Arc<dyn AnswerModel>>, String> {
    let Some(llm) = &config.llm else {
        tracing::info!("model: none (LLM_BASE_URL unset); answers are not generated");
        return Ok(None);
    };
    let mut settings = chatdesk_llm::LlmConfig::new(llm.base_url.clone(), llm.model.clone())
        .with_timeout(llm.timeout);
    if let Some(key) = &llm.api_key {
        settings = settings.with_api_key(key.clone());
    }
    let adapter = chatdesk_llm::OpenAiCompatible::new(settings)
        .map_err(|e| format!("invalid model settings: {e}"))?;
    tracing::info!(model = %llm.model, endpoint = %adapter.endpoint(), ranks = llm.model_ranks, "model");
    Ok(Some(Arc::new(adapter)))
}

/// Every service of the API over the real adapters.
pub fn services(store: Store, model: Option<Arc<dyn AnswerModel>>, model_ranks: bool) -> Services {
    let store = Arc::new(store);
    let ranker = if model_ranks {
        RankerChoice::Model
    } else {
        RankerChoice::Lexical
    };
    Services {
        tenancy: tenancy(&store),
        sites: SiteService::new(clock(), ids(), store.clone()),
        widgets: WidgetService::new(clock(), ids(), store.clone(), store.clone()),
        content: ContentService::new(clock(), ids(), store.clone(), store.clone()),
        conversations: ConversationService::new(store.clone(), store.clone()),
        tickets: TicketService::new(clock(), store.clone(), store.clone()),
        idempotency: IdempotencyService::new(clock(), store.clone(), store.clone()),
        visitors: VisitorService::new(clock(), ids(), store.clone(), model).with_ranker(ranker),
        readiness: store,
    }
}

/// A built server, bound but not yet running.
pub struct Application {
    server: actix_web::dev::Server,
    port: u16,
    /// Stops the config-change watcher and the delivery worker when the
    /// server ends.
    stop_watcher: Arc<AtomicBool>,
}

impl Application {
    /// Opens and migrates the database, checks the mail settings, binds
    /// `bind` (port 0 picks a free one) and builds the server.
    pub fn build(config: &Config, bind: &str) -> Result<Application, String> {
        let mail = chatdesk_mail::MailConfig {
            smtp_url: config.smtp_url.clone(),
            resend_api_key: config.resend_api_key.clone(),
            resend_base_url: config.resend_base_url.clone(),
            from: config.mail_from.clone(),
        };
        let transport = chatdesk_mail::build_mailer(&mail)
            .map_err(|e| format!("invalid mail settings: {e}"))?;
        let model = model(config)?;
        let store = open_store(config)?;
        let listener =
            TcpListener::bind(bind).map_err(|e| format!("cannot listen on {bind}: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?
            .port();
        // Every replica's SDK config cache hears of every change to a
        // site, widget or plan, made here, by another replica or the CLI.
        let sdk_caches: Arc<chatdesk_api::sdk::cache::SdkCaches> = Arc::default();
        let stop_watcher = Arc::new(AtomicBool::new(false));
        let caches = sdk_caches.clone();
        store
            .watch_config_changes(move |change| caches.apply(change), stop_watcher.clone())
            .map_err(|e| format!("cannot start the config-change watcher: {e}"))?;
        let api = ApiConfig {
            dashboard_origins: config.dashboard_origins.clone(),
            workers: config.workers,
            body_timeout: Some(config.body_timeout),
            observability: Some(Arc::new(store.clone())),
            sdk_caches,
        };
        // The delivery worker sends the tickets' emails queued in the
        // outbox, those a previous process left undelivered included.
        let delivery = DeliveryService::new(
            clock(),
            Arc::new(store.clone()),
            Arc::new(chatdesk_mail::TransportTicketMailer::new(transport)),
        );
        chatdesk_mail::spawn_delivery_worker(
            delivery,
            chatdesk_mail::WorkerSettings::default(),
            stop_watcher.clone(),
        )
        .map_err(|e| {
            stop_watcher.store(true, Ordering::Release);
            format!("cannot start the delivery worker: {e}")
        })?;
        let model_ranks = config.llm.as_ref().is_some_and(|l| l.model_ranks);
        let mut services = services(store, model, model_ranks);
        services.visitors = services
            .visitors
            .with_mail_domain(chatdesk_mail::mail_domain(&config.mail_from));
        let server = chatdesk_api::serve(listener, services, api).map_err(|e| {
            stop_watcher.store(true, Ordering::Release);
            format!("cannot start the server: {e}")
        })?;
        Ok(Application {
            server,
            port,
            stop_watcher,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until stopped: SIGTERM stops it gracefully (requests in
    /// flight get up to 30 s); SIGINT and SIGQUIT stop it at once.
    pub async fn run(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.stop_watcher.store(true, Ordering::Release);
        served
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

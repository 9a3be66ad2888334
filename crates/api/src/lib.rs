//! chatdesk's HTTP API: actix-web routes over the domain's use cases,
//! bearer-token auth, problem+json errors, CORS for the dashboard, request
//! ids, and the generated OpenAPI document.

pub mod dto;
pub mod error;
pub mod etag;
pub mod extract;
pub mod metrics;
pub mod request_log;
pub mod routes;
pub mod sdk;

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::{Cors, CorsError};
use actix_web::dev::{Server, Service, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpServer, ResponseError};
use chatdesk_domain::ids::SiteId;
use chatdesk_domain::observability::Observability;
use chatdesk_domain::ports::Readiness;
use chatdesk_domain::services::{
    ContentService, ConversationService, IdempotencyService, SiteService, TenancyService,
    TicketService, VisitorService, WidgetService,
};
use sdk::cache::SdkCaches;

pub use error::ApiError;
pub use routes::openapi::ApiDoc;

/// HTTP settings.
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    /// Origins the dashboard SPA is served from (exact `scheme://host[:port]`);
    /// CORS is answered for these and no others.
    pub dashboard_origins: Vec<String>,
    /// Worker threads (default: one per core).
    pub workers: Option<usize>,
    /// How long a request body may take to arrive before a 408 (default
    /// [`extract::DEFAULT_BODY_TIMEOUT`]).
    pub body_timeout: Option<std::time::Duration>,
    /// The storage figures `GET /metrics` reports (pool, outbox depth);
    /// without them it reports the HTTP metrics only.
    pub observability: Option<Arc<dyn Observability>>,
    /// The SDK's in-process caches; the binary also hands them the store's
    /// change reports.
    pub sdk_caches: Arc<SdkCaches>,
}

fn dashboard_cors(origins: &[String]) -> Cors {
    let allowed: Vec<String> = origins
        .iter()
        .map(|o| o.trim_end_matches('/').to_string())
        .collect();
    Cors::default()
        .allowed_origin_fn(move |origin: &HeaderValue, _| {
            origin
                .to_str()
                .is_ok_and(|o| allowed.iter().any(|a| a == o))
        })
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        // If-Match for optimistic concurrency and Idempotency-Key for safe
        // retries of creating requests; the SPA reads each answer's ETag,
        // Retry-After (429, 503), request id and whether it was replayed.
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::ETAG.as_str(),
            header::RETRY_AFTER.as_str(),
            header::LOCATION.as_str(),
            "x-request-id",
            "idempotency-replayed",
        ])
        .max_age(600)
        // Simple requests from other origins are answered without CORS
        // headers, so the browser withholds the answer; refused preflights
        // become problems in `cors_problems`.
        .block_on_origin_mismatch(false)
}

/// Turns actix-cors' plain-text refusals into problem+json.
fn cors_problems(res: ServiceResponse) -> ServiceResponse {
    let problem = res
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
        .map(|e| match e {
            CorsError::OriginNotAllowed => ApiError::new(
                StatusCode::FORBIDDEN,
                "ORIGIN_NOT_ALLOWED",
                "This origin may not call the dashboard API.",
            ),
            other => ApiError::malformed("CORS_REQUEST_INVALID", other.to_string()),
        });
    match problem {
        Some(problem) => res.into_response(problem.error_response()),
        None => res,
    }
}

/// Registers every route; used by the server and by in-process tests.
pub fn configure(config: &ApiConfig) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        use actix_web::http::Method;
        if let Some(observability) = &config.observability {
            cfg.app_data(web::Data::from(observability.clone()));
        }
        // The SDK scope first: the widget's calls are the busiest, and
        // routing tries the services in this order (`/widget/{version}.js`
        // is a regex).
        cfg.service(
            web::scope("/api/v1/sdk")
                .app_data(web::PayloadConfig::new(sdk::SDK_BODY_LIMIT))
                .app_data(extract::BodyLimit(sdk::SDK_BODY_LIMIT))
                .wrap(actix_web::middleware::from_fn(sdk::cors::sdk_cors))
                .configure(routes::sdk_routes),
        )
        .service(routes::resource(
            "/healthz",
            [(Method::GET, web::to(routes::health::healthz))],
        ))
        .service(routes::resource(
            "/readyz",
            [(Method::GET, web::to(routes::health::readyz))],
        ))
        .service(routes::resource(
            "/metrics",
            [(Method::GET, web::to(metrics::scrape))],
        ))
        .service(routes::resource(
            "/api/v1/openapi.json",
            [(Method::GET, web::to(routes::openapi::openapi_json))],
        ))
        .service(routes::resource(
            "/widget.js",
            [
                (Method::GET, web::to(routes::widget_script::latest)),
                (Method::HEAD, web::to(routes::widget_script::latest)),
            ],
        ))
        .service(routes::resource(
            "/widget/{version}.js",
            [
                (Method::GET, web::to(routes::widget_script::versioned)),
                (Method::HEAD, web::to(routes::widget_script::versioned)),
            ],
        ))
        .service(
            web::scope("/api/v1")
                .wrap_fn(|req, srv| {
                    // A change to a site (or its key, mapping, widget, …)
                    // drops this replica's cached SDK config before the
                    // member sees the answer.
                    let mutating = !matches!(
                        *req.method(),
                        actix_web::http::Method::GET
                            | actix_web::http::Method::HEAD
                            | actix_web::http::Method::OPTIONS
                    );
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await?;
                        if mutating && res.status().is_success() {
                            let site = res
                                .request()
                                .match_info()
                                .get("siteId")
                                .and_then(|s| s.parse::<SiteId>().ok());
                            let caches = res.request().app_data::<web::Data<SdkCaches>>();
                            if let (Some(site), Some(caches)) = (site, caches) {
                                caches.site_changed(site);
                            }
                        }
                        Ok(res)
                    }
                })
                .wrap(dashboard_cors(&config.dashboard_origins))
                .wrap_fn(|req, srv| {
                    let fut = srv.call(req);
                    async move {
                        fut.await
                            .map(|res| cors_problems(res.map_into_boxed_body()))
                    }
                })
                .configure(routes::dashboard),
        )
        // After the API scopes: its catch-all pattern is a regex that every
        // request registered after it would pay for.
        .service(routes::openapi::api_reference())
        .service(web::redirect(
            "/api/docs",
            routes::openapi::API_REFERENCE_PATH,
        ))
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(ApiError::not_found("No route matches this path."))
        }));
    }
}

/// The services the routes use, built by the binary over its adapters.
/// Each is registered on its own, and each route receives only the one it
/// uses (see [`extract::Dashboard`]).
#[derive(Clone)]
pub struct Services {
    /// Sign-in, tenants and members.
    pub tenancy: TenancyService,
    /// Sites and their secrets.
    pub sites: SiteService,
    /// The widget Builder.
    pub widgets: WidgetService,
    /// The content library.
    pub content: ContentService,
    /// The Conversations tab.
    pub conversations: ConversationService,
    /// The Tickets tab.
    pub tickets: TicketService,
    /// `Idempotency-Key` for the creating requests.
    pub idempotency: IdempotencyService,
    /// The widget SDK.
    pub visitors: VisitorService,
    /// The database probe of `/readyz`.
    pub readiness: Arc<dyn Readiness>,
}

/// The [`Services`] as app data, made once and shared by every worker.
#[derive(Clone)]
struct AppData {
    tenancy: web::Data<TenancyService>,
    sites: web::Data<SiteService>,
    widgets: web::Data<WidgetService>,
    content: web::Data<ContentService>,
    conversations: web::Data<ConversationService>,
    tickets: web::Data<TicketService>,
    idempotency: web::Data<IdempotencyService>,
    visitors: web::Data<VisitorService>,
    readiness: web::Data<dyn Readiness>,
}

impl AppData {
    fn new(services: Services) -> Self {
        AppData {
            tenancy: web::Data::new(services.tenancy),
            sites: web::Data::new(services.sites),
            widgets: web::Data::new(services.widgets),
            content: web::Data::new(services.content),
            conversations: web::Data::new(services.conversations),
            tickets: web::Data::new(services.tickets),
            idempotency: web::Data::new(services.idempotency),
            visitors: web::Data::new(services.visitors),
            readiness: web::Data::from(services.readiness),
        }
    }
}

/// Builds the server on a bound listener; the caller awaits it.
pub fn serve(
    listener: TcpListener,
    services: Services,
    config: ApiConfig,
) -> std::io::Result<Server> {
    let data = AppData::new(services);
    // The widget's script is hashed and gzipped once, here, not per request.
    routes::widget_script::prepare();
    let workers = config.workers;
    let body_timeout =
        extract::BodyTimeout(config.body_timeout.unwrap_or(extract::DEFAULT_BODY_TIMEOUT));
    let metrics = web::Data::new(metrics::Metrics::new().map_err(std::io::Error::other)?);
    let caches = web::Data::from(config.sdk_caches.clone());
    let server = HttpServer::new(move || {
        let data = data.clone();
        let tracked = metrics.clone();
        App::new()
            .app_data(data.tenancy)
            .app_data(data.sites)
            .app_data(data.widgets)
            .app_data(data.content)
            .app_data(data.conversations)
            .app_data(data.tickets)
            .app_data(data.idempotency)
            .app_data(data.visitors)
            .app_data(caches.clone())
            .app_data(data.readiness)
            .app_data(metrics.clone())
            .app_data(web::PayloadConfig::new(extract::DASHBOARD_BODY_LIMIT))
            .app_data(body_timeout)
            .configure(configure(&config))
            .wrap_fn(move |req, srv| tracked.track(req, srv))
            // Outermost: the request id, the span the rest runs in, and one
            // log line per request.
            .wrap_fn(request_log::observe)
    })
    // Without TCP_NODELAY the last small write of a streamed body (a
    // conversation's detail or export) waits for the client's delayed ACK,
    // about 40 ms on a keep-alive connection.
    .on_connect(|connection, _| {
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY could not be set");
            }
        }
    })
    .listen(listener)?;
    let server = match workers {
        Some(n) => server.workers(n),
        None => server,
    };
    Ok(server.run())
}

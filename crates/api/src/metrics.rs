//! `GET /metrics`: Prometheus metrics in the text exposition format,
//! rendered by the `prometheus` crate.
//!
//! - `chatdesk_http_requests_total` and `chatdesk_http_request_duration_seconds`
//!   by `method`, `route` and `status`, recorded by [`Metrics::track`]. The
//!   route is the matched pattern (`/api/v1/sites/{siteId}`), never the raw
//!   path, and every request that matched no route is `unmatched`; methods
//!   other than the standard ones are `OTHER`; so the label sets stay few.
//! - The database pool and the email outbox, read at scrape time through the
//!   domain's [`Observability`] port, when the server was given one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse};
use chatdesk_domain::observability::{Observability, PoolStats};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::error::ApiError;

/// The `route` label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds, in seconds, of the request-latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's HTTP metrics. One per server, shared by its workers.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    recorder: Arc<Recorder>,
    /// The last outbox depth read and when: scrapes within
    /// [`OUTBOX_DEPTH_MAX_AGE`] reuse it, so however often `/metrics` is
    /// called, the database counts the outbox at most once per interval.
    outbox_depth: std::sync::Mutex<Option<(std::time::Instant, u64)>>,
}

/// A request's labels: method, status and route pattern.
type Labels = (&'static str, u16, Cow<'static, str>);

/// Records requests: the metric vectors, and the children each label set
/// resolved to, so a request costs one lookup of its labels instead of a
/// hash of them per metric.
#[derive(Debug)]
struct Recorder {
    requests: IntCounterVec,
    durations: HistogramVec,
    children: RwLock<HashMap<Labels, (IntCounter, Histogram)>>,
}

impl Recorder {
    fn record(&self, labels: Labels, seconds: f64) {
        let found = self
            .children
            .read()
            .ok()
            .and_then(|children| children.get(&labels).cloned());
        let (count, duration) = match found {
            Some(children) => children,
            None => {
                let status = labels.1.to_string();
                let values = [labels.0, labels.2.as_ref(), status.as_str()];
                let children = (
                    self.requests.with_label_values(&values),
                    self.durations.with_label_values(&values),
                );
                if let Ok(mut cache) = self.children.write() {
                    cache.insert(labels, children.clone());
                }
                children
            }
        };
        count.inc();
        duration.observe(seconds);
    }
}

/// How long a read outbox depth is reused.
pub const OUTBOX_DEPTH_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(5);

impl Metrics {
    /// Registers the HTTP metrics in a registry of their own.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let labels = ["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new(
                "chatdesk_http_requests_total",
                "HTTP requests answered, by method, route pattern and status.",
            ),
            &labels,
        )?;
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "chatdesk_http_request_duration_seconds",
                "Time from receiving an HTTP request to its response, by method, route \
                 pattern and status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &labels,
        )?;
        let registry = Registry::new();
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        Ok(Metrics {
            outbox_depth: std::sync::Mutex::new(None),
            registry,
            recorder: Arc::new(Recorder {
                requests,
                durations,
                children: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// The outbox depth read less than [`OUTBOX_DEPTH_MAX_AGE`] ago.
    fn recent_outbox_depth(&self) -> Option<u64> {
        let last = *self.outbox_depth.lock().ok()?;
        last.filter(|(at, _)| at.elapsed() < OUTBOX_DEPTH_MAX_AGE)
            .map(|(_, depth)| depth)
    }

    fn remember_outbox_depth(&self, depth: u64) {
        if let Ok(mut last) = self.outbox_depth.lock() {
            *last = Some((std::time::Instant::now(), depth));
        }
    }

    /// Middleware (for `wrap_fn`): counts and times every request passing
    /// through `srv`.
    pub fn track<S, B>(
        &self,
        req: ServiceRequest,
        srv: &S,
    ) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
    where
        S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
        S::Future: 'static,
        B: 'static,
    {
        let method = method_label(req.method());
        let started = Instant::now();
        let recorder = self.recorder.clone();
        let response = srv.call(req);
        async move {
            let response = response.await;
            let (route, status) = match &response {
                // After routing the pattern is looked up by the matched
                // resource, without matching the path again.
                Ok(res) => (res.request().match_pattern(), res.status()),
                Err(error) => (None, error.as_response_error().status_code()),
            };
            let route = route.map_or(Cow::Borrowed(UNMATCHED_ROUTE), Cow::Owned);
            recorder.record(
                (method, status.as_u16(), route),
                started.elapsed().as_secs_f64(),
            );
            response
        }
    }

    /// The registry's metrics followed by `more`, in the text format.
    fn render(&self, more: Vec<MetricFamily>) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        families.extend(more);
        TextEncoder::new().encode_to_string(&families)
    }
}

/// The `method` label: the standard methods by name, any other `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

/// The metrics, as Prometheus scrapes them. Pool figures come from memory;
/// the outbox depth takes one short query on the blocking pool. Answers 200
/// while the database is down: the depth is then left out and
/// `chatdesk_outbox_depth_error` is 1.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "operations", security(),
    responses((status = 200, description = "Prometheus metrics in the text exposition format: requests by route pattern, method and status (`chatdesk_http_requests_total`, `chatdesk_http_request_duration_seconds`), the database pool (`chatdesk_db_pool_*`) and the email outbox depth (`chatdesk_outbox_depth`; left out, with `chatdesk_outbox_depth_error` 1, while the database does not answer)", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn scrape(
    metrics: web::Data<Metrics>,
    storage: Option<web::Data<dyn Observability>>,
) -> Result<HttpResponse, ApiError> {
    let mut families = Vec::new();
    if let Some(storage) = storage {
        families.extend(pool_families(&storage.pool_stats()));
        let depth = match metrics.recent_outbox_depth() {
            Some(depth) => Some(depth),
            None => {
                let storage = storage.into_inner();
                match web::block(move || storage.outbox_depth()).await {
                    Ok(Ok(depth)) => {
                        metrics.remember_outbox_depth(depth);
                        Some(depth)
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "the outbox depth could not be read");
                        None
                    }
                    Err(_) => None,
                }
            }
        };
        families.extend(outbox_families(depth));
    }
    let body = metrics.render(families).map_err(|error| {
        tracing::error!(%error, "cannot render the metrics");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "The metrics could not be rendered.",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type(prometheus::TEXT_FORMAT)
        .body(body))
}

/// The pool's gauges, its waits counter and its wait-time histogram.
fn pool_families(stats: &PoolStats) -> Vec<MetricFamily> {
    let waits = &stats.checkout_waits;
    let mut histogram = proto::Histogram::default();
    histogram.set_sample_count(waits.count);
    histogram.set_sample_sum(waits.sum_seconds);
    histogram.set_bucket(
        waits
            .buckets
            .iter()
            .map(|&(upper_bound, count)| {
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(upper_bound);
                bucket.set_cumulative_count(count);
                bucket
            })
            .collect(),
    );
    let mut wait_seconds = proto::Metric::default();
    wait_seconds.set_histogram(histogram);
    vec![
        gauge(
            "chatdesk_db_pool_max_connections",
            "The most connections the database pool opens.",
            stats.max_connections.into(),
        ),
        gauge(
            "chatdesk_db_pool_connections",
            "Database connections open, idle or in use.",
            stats.open_connections.into(),
        ),
        gauge(
            "chatdesk_db_pool_connections_idle",
            "Open database connections waiting in the pool.",
            stats.idle_connections.into(),
        ),
        gauge(
            "chatdesk_db_pool_connections_in_use",
            "Database connections checked out (open minus idle).",
            stats.in_use().into(),
        ),
        family(
            "chatdesk_db_pool_checkout_waits_total",
            "Connection checkouts that found no idle connection and had to wait.",
            MetricType::COUNTER,
            {
                let mut counter = proto::Counter::default();
                counter.set_value(waits.count as f64);
                let mut metric = proto::Metric::default();
                metric.set_counter(counter);
                metric
            },
        ),
        family(
            "chatdesk_db_pool_checkout_wait_seconds",
            "How long checkouts that had to wait waited for a connection.",
            MetricType::HISTOGRAM,
            wait_seconds,
        ),
    ]
}

/// The outbox depth when it could be read, and whether it could not.
fn outbox_families(depth: Option<u64>) -> Vec<MetricFamily> {
    let mut families = Vec::with_capacity(2);
    if let Some(depth) = depth {
        families.push(gauge(
            "chatdesk_outbox_depth",
            "Emails waiting for delivery (PENDING rows of the email outbox).",
            depth as f64,
        ));
    }
    families.push(gauge(
        "chatdesk_outbox_depth_error",
        "1 when this scrape could not read the outbox depth (database unreachable or busy), \
         else 0.",
        if depth.is_some() { 0.0 } else { 1.0 },
    ));
    families
}

fn gauge(name: &str, help: &str, value: f64) -> MetricFamily {
    let mut gauge = proto::Gauge::default();
    gauge.set_value(value);
    family(
        name,
        help,
        MetricType::GAUGE,
        proto::Metric::from_gauge(gauge),
    )
}

fn family(name: &str, help: &str, kind: MetricType, metric: proto::Metric) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help.to_string());
    family.set_field_type(kind);
    family.set_metric(vec![metric]);
    family
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::{test as http, App};
    use chatdesk_domain::observability::{MockObservability, WaitHistogram};
    use openmetrics_parser::prometheus::parse_prometheus;
    use openmetrics_parser::{PrometheusType, PrometheusValue};

    use super::*;
    use crate::ApiConfig;

    fn pool_stats() -> PoolStats {
        PoolStats {
            max_connections: 8,
            open_connections: 3,
            idle_connections: 1,
            checkout_waits: WaitHistogram {
                count: 3,
                sum_seconds: 0.75,
                buckets: vec![(0.1, 1), (0.5, 2), (1.0, 3)],
            },
        }
    }

    /// The API's routes behind the metrics middleware, as `serve` wires them.
    async fn scrape_after_requests(
        observability: Option<Arc<dyn Observability>>,
    ) -> (String, String) {
        let metrics = web::Data::new(Metrics::new().unwrap());
        let tracked = metrics.clone();
        let config = ApiConfig {
            observability,
            ..ApiConfig::default()
        };
        let app = http::init_service(
            App::new()
                .app_data(metrics.clone())
                .configure(crate::configure(&config))
                .wrap_fn(move |req, srv| tracked.track(req, srv)),
        )
        .await;
        for (method, path) in [
            (Method::GET, "/healthz"),
            (Method::GET, "/healthz"),
            (Method::PUT, "/healthz"),
            (Method::GET, "/no/such/path"),
            (Method::from_bytes(b"BREW").unwrap(), "/healthz"),
        ] {
            let req = http::TestRequest::default()
                .method(method)
                .uri(path)
                .to_request();
            http::call_service(&app, req).await;
        }
        let res =
            http::call_service(&app, http::TestRequest::get().uri("/metrics").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        let content_type = res
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = http::read_body(res).await;
        (content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    fn value(text: &str, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let exposition = parse_prometheus(text).unwrap();
        let family = exposition.families.get(family)?;
        let value = family
            .iter_samples()
            .find(|sample| {
                let set = sample.get_labelset().unwrap();
                labels
                    .iter()
                    .all(|(name, value)| set.get_label_value(name) == Some(value))
            })
            .map(|sample| match &sample.value {
                PrometheusValue::Counter(counter) => counter.value.as_f64(),
                PrometheusValue::Gauge(gauge) => gauge.as_f64(),
                PrometheusValue::Histogram(histogram) => histogram.count.unwrap() as f64,
                other => panic!("unexpected sample {other:?}"),
            });
        value
    }

    #[actix_web::test]
    async fn requests_are_counted_by_route_pattern_method_and_status() {
        let (content_type, text) = scrape_after_requests(None).await;
        assert_eq!(content_type, "text/plain; version=0.0.4");
        let requests = "chatdesk_http_requests_total";
        let count = |method, route, status| {
            value(
                &text,
                requests,
                &[("method", method), ("route", route), ("status", status)],
            )
        };
        assert_eq!(count("GET", "/healthz", "200"), Some(2.0));
        assert_eq!(count("PUT", "/healthz", "405"), Some(1.0));
        assert_eq!(count("OTHER", "/healthz", "405"), Some(1.0));
        assert_eq!(count("GET", UNMATCHED_ROUTE, "404"), Some(1.0));
        // The raw path never becomes a label.
        assert!(!text.contains("/no/such/path"), "{text}");

        let exposition = parse_prometheus(&text).unwrap();
        let durations = &exposition.families["chatdesk_http_request_duration_seconds"];
        assert_eq!(durations.family_type, PrometheusType::Histogram);
        let healthz = durations
            .iter_samples()
            .find(|s| {
                let set = s.get_labelset().unwrap();
                set.get_label_value("route") == Some("/healthz")
                    && set.get_label_value("status") == Some("200")
            })
            .unwrap();
        let PrometheusValue::Histogram(histogram) = &healthz.value else {
            panic!("not a histogram");
        };
        assert_eq!(histogram.count, Some(2));
        assert_eq!(histogram.buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert!(histogram
            .buckets
            .iter()
            .any(|b| b.upper_bound.is_infinite()));
        // Without storage there are no pool or outbox figures.
        assert!(!text.contains("chatdesk_db_pool"), "{text}");
        assert!(!text.contains("chatdesk_outbox"), "{text}");
    }

    #[actix_web::test]
    async fn pool_figures_and_outbox_depth_come_from_storage() {
        let mut storage = MockObservability::new();
        storage.expect_pool_stats().returning(pool_stats);
        storage.expect_outbox_depth().times(1).returning(|| Ok(7));
        let (_, text) = scrape_after_requests(Some(Arc::new(storage))).await;
        let gauge = |name| value(&text, name, &[]);
        assert_eq!(gauge("chatdesk_db_pool_max_connections"), Some(8.0));
        assert_eq!(gauge("chatdesk_db_pool_connections"), Some(3.0));
        assert_eq!(gauge("chatdesk_db_pool_connections_idle"), Some(1.0));
        assert_eq!(gauge("chatdesk_db_pool_connections_in_use"), Some(2.0));
        assert_eq!(gauge("chatdesk_db_pool_checkout_waits_total"), Some(3.0));
        assert_eq!(gauge("chatdesk_db_pool_checkout_wait_seconds"), Some(3.0));
        assert_eq!(gauge("chatdesk_outbox_depth"), Some(7.0));
        assert_eq!(gauge("chatdesk_outbox_depth_error"), Some(0.0));
        assert!(
            text.contains("chatdesk_db_pool_checkout_wait_seconds_bucket{le=\"0.5\"} 2"),
            "{text}"
        );
    }

    #[actix_web::test]
    async fn an_unreadable_outbox_is_flagged_not_a_failure() {
        let mut storage = MockObservability::new();
        storage.expect_pool_stats().returning(pool_stats);
        storage
            .expect_outbox_depth()
            .returning(|| Err(chatdesk_domain::Error::DatabaseUnavailable));
        let (_, text) = scrape_after_requests(Some(Arc::new(storage))).await;
        assert_eq!(value(&text, "chatdesk_outbox_depth", &[]), None);
        assert_eq!(value(&text, "chatdesk_outbox_depth_error", &[]), Some(1.0));
        assert_eq!(value(&text, "chatdesk_db_pool_connections", &[]), Some(3.0));
    }

    #[test]
    fn unusual_methods_share_one_label() {
        for (method, label) in [
            (Method::GET, "GET"),
            (Method::DELETE, "DELETE"),
            (Method::from_bytes(b"PROPFIND").unwrap(), "OTHER"),
        ] {
            assert_eq!(method_label(&method), label);
        }
    }

    #[actix_web::test]
    async fn the_outbox_is_counted_at_most_once_per_interval() {
        let mut storage = MockObservability::new();
        storage.expect_pool_stats().returning(pool_stats);
        storage.expect_outbox_depth().times(1).returning(|| Ok(7));
        let storage: Arc<dyn Observability> = Arc::new(storage);
        let metrics = web::Data::new(Metrics::new().unwrap());
        let config = ApiConfig {
            observability: Some(storage),
            ..ApiConfig::default()
        };
        let app = http::init_service(
            App::new()
                .app_data(metrics)
                .configure(crate::configure(&config)),
        )
        .await;
        for _ in 0..3 {
            let res =
                http::call_service(&app, http::TestRequest::get().uri("/metrics").to_request())
                    .await;
            assert_eq!(res.status(), StatusCode::OK);
            let text = String::from_utf8(http::read_body(res).await.to_vec()).unwrap();
            assert_eq!(value(&text, "chatdesk_outbox_depth", &[]), Some(7.0));
        }
    }
}

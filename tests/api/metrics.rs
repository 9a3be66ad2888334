//! `GET /metrics`, read as Prometheus reads it: request counts and
//! latencies by route pattern, method and status; the database pool; the
//! email outbox.

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{HistogramValue, MetricsExposition, PrometheusType, PrometheusValue};

use crate::app;
use crate::helpers::TestApp;

/// One scrape, parsed.
struct Scrape {
    text: String,
    metrics: MetricsExposition<PrometheusType, PrometheusValue>,
}

impl Scrape {
    fn of(app: &TestApp) -> Scrape {
        let reply = app.get("/metrics", None);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.content_type, "text/plain; version=0.0.4");
        let text = reply.body.as_str().expect("a text body").to_string();
        let metrics = parse_prometheus(&text)
            .unwrap_or_else(|e| panic!("not the Prometheus text format: {e}\n{text}"));
        Scrape { text, metrics }
    }

    /// The sample of `family` whose labels include `labels`.
    fn sample(&self, family: &str, labels: &[(&str, &str)]) -> Option<&PrometheusValue> {
        self.metrics
            .families
            .get(family)?
            .iter_samples()
            .find(|sample| {
                let set = sample.get_labelset().expect("labels");
                labels
                    .iter()
                    .all(|(name, value)| set.get_label_value(name) == Some(value))
            })
            .map(|sample| &sample.value)
    }

    fn kind(&self, family: &str) -> Option<&PrometheusType> {
        self.metrics.families.get(family).map(|f| &f.family_type)
    }

    /// A counter's or gauge's value.
    fn value(&self, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.sample(family, labels)? {
            PrometheusValue::Counter(counter) => Some(counter.value.as_f64()),
            PrometheusValue::Gauge(gauge) => Some(gauge.as_f64()),
            other => panic!("{family} is not a counter or gauge: {other:?}"),
        }
    }

    fn histogram(&self, family: &str, labels: &[(&str, &str)]) -> Option<&HistogramValue> {
        match self.sample(family, labels)? {
            PrometheusValue::Histogram(histogram) => Some(histogram),
            other => panic!("{family} is not a histogram: {other:?}"),
        }
    }

    fn requests(&self, method: &str, route: &str, status: &str) -> f64 {
        self.value(
            "chatdesk_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
        .unwrap_or(0.0)
    }
}

/// Buckets ascend and counts never fall, ending in `+Inf` with the total.
#[track_caller]
fn assert_well_formed(histogram: &HistogramValue) {
    assert!(!histogram.buckets.is_empty());
    for pair in histogram.buckets.windows(2) {
        assert!(pair[0].upper_bound < pair[1].upper_bound, "{histogram:?}");
        assert!(
            pair[0].count.as_f64() <= pair[1].count.as_f64(),
            "{histogram:?}"
        );
    }
    let last = histogram.buckets.last().expect("a bucket");
    assert!(last.upper_bound.is_infinite(), "{histogram:?}");
    assert_eq!(Some(last.count.as_f64() as u64), histogram.count);
}

#[test]
fn requests_are_counted_and_timed_by_route_pattern_and_status() {
    let app = app!();
    let tenant = app.tenant(chatdesk_domain::tenant::Plan::Pro);
    let site = app.site(&tenant.token, "metrics.example.com")["site"]["id"]
        .as_str()
        .expect("site id")
        .to_string();
    let before = Scrape::of(&app);
    let site_path = format!("/api/v1/sites/{site}");
    for _ in 0..2 {
        assert_eq!(app.get(&site_path, Some(&tenant.token)).status, 200);
    }
    let other = format!("/api/v1/sites/{}", uuid::Uuid::new_v4());
    assert_eq!(app.get(&other, Some(&tenant.token)).status, 404);
    assert_eq!(app.get("/api/v1/no-such-thing", None).status, 404);
    let after = Scrape::of(&app);

    let route = "/api/v1/sites/{siteId}";
    assert_eq!(
        after.requests("GET", route, "200") - before.requests("GET", route, "200"),
        2.0
    );
    assert_eq!(
        after.requests("GET", route, "404") - before.requests("GET", route, "404"),
        1.0
    );
    assert_eq!(
        after.requests("GET", "unmatched", "404") - before.requests("GET", "unmatched", "404"),
        1.0
    );
    assert!(after.requests("POST", "/api/v1/sites", "201") >= 1.0);
    // The first scrape is counted by the second.
    assert!(after.requests("GET", "/metrics", "200") >= 1.0);
    // Raw paths never become labels.
    assert!(!after.text.contains(&site), "{}", after.text);
    assert!(!after.text.contains("no-such-thing"), "{}", after.text);

    let family = "chatdesk_http_request_duration_seconds";
    assert_eq!(after.kind(family), Some(&PrometheusType::Histogram));
    let latency = after
        .histogram(
            family,
            &[("method", "GET"), ("route", route), ("status", "200")],
        )
        .expect("a latency histogram for the route");
    assert_well_formed(latency);
    assert!(latency.buckets.len() > 5, "{latency:?}");
    assert!(latency.count >= Some(2));
    assert!(latency.sum.as_ref().is_some_and(|sum| sum.as_f64() > 0.0));
}

#[test]
fn the_database_pool_and_the_outbox_are_reported() {
    let app = app!();
    // Use the pool a little first.
    let tenant = app.tenant(chatdesk_domain::tenant::Plan::Pro);
    assert_eq!(app.get("/api/v1/me", Some(&tenant.token)).status, 200);
    let scrape = Scrape::of(&app);

    let gauge = |name: &str| {
        assert_eq!(scrape.kind(name), Some(&PrometheusType::Gauge), "{name}");
        scrape
            .value(name, &[])
            .unwrap_or_else(|| panic!("{name} missing:\n{}", scrape.text))
    };
    let max = gauge("chatdesk_db_pool_max_connections");
    let open = gauge("chatdesk_db_pool_connections");
    let idle = gauge("chatdesk_db_pool_connections_idle");
    let in_use = gauge("chatdesk_db_pool_connections_in_use");
    assert_eq!(max, f64::from(app.config.pool_size));
    assert!((1.0..=max).contains(&open), "open {open} of {max}");
    assert!(idle <= open && in_use <= open, "{}", scrape.text);
    assert_eq!(in_use, open - idle);

    let waits_family = "chatdesk_db_pool_checkout_waits_total";
    assert_eq!(scrape.kind(waits_family), Some(&PrometheusType::Counter));
    let waits = scrape.value(waits_family, &[]).expect("waits counter");
    let wait_time = scrape
        .histogram("chatdesk_db_pool_checkout_wait_seconds", &[])
        .expect("wait-time histogram");
    assert_well_formed(wait_time);
    assert_eq!(wait_time.count, Some(waits as u64));

    // A fresh database has an empty outbox, read without error.
    assert_eq!(scrape.value("chatdesk_outbox_depth", &[]), Some(0.0));
    assert_eq!(scrape.value("chatdesk_outbox_depth_error", &[]), Some(0.0));
}

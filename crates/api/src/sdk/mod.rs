//! The widget SDK's plumbing: the site key, the browser's origin and the
//! session token of a request ([`Sdk`]), the per-key gate cache
//! ([`cache`]) and the SDK's CORS policy ([`cors`]).

pub mod cache;
pub mod cors;

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use chatdesk_domain::secret::SecretHash;
use chatdesk_domain::services::VisitorService;
use chatdesk_domain::visitor::SiteGate;
use chatdesk_domain::Error;

use crate::dto::sdk::ConfigView;
use crate::error::ApiError;
use crate::extract::run;
use cache::{Cached, CachedGate, SdkCaches};

/// The header carrying the site's API key.
pub const SITE_KEY_HEADER: &str = "x-chatdesk-site-key";
/// The header carrying a session's token.
pub const SESSION_HEADER: &str = "x-chatdesk-session";
/// The most bytes an SDK request body may have.
pub const SDK_BODY_LIMIT: usize = 64 * 1024;

/// An SDK request: its site key, `Origin` and session token, with the
/// visitor service and the caches. When the key's gate is cached, the key
/// and the origin are checked as the request is extracted, before its
/// body is read: a wrong origin is a 403 whatever the body holds.
pub struct Sdk {
    key: SecretHash,
    origin: Option<String>,
    session_token: Option<String>,
    cached: Option<Arc<CachedGate>>,
    service: web::Data<VisitorService>,
    caches: web::Data<SdkCaches>,
}

/// A header's value, trimmed; `None` when absent or blank. Bytes that are
/// not UTF-8 are kept as replacement characters, so such a key, token or
/// origin is simply one that matches nothing (never taken as absent).
/// Borrowed from the request unless it had to be repaired.
fn header_text<'a>(req: &'a HttpRequest, name: &str) -> Option<Cow<'a, str>> {
    let value = req.headers().get(name)?;
    let text = match String::from_utf8_lossy(value.as_bytes()) {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
        Cow::Owned(text) => Cow::Owned(text.trim().to_string()),
    };
    (!text.is_empty()).then_some(text)
}

/// [`header_text`], owned.
fn header_value(req: &HttpRequest, name: &str) -> Option<String> {
    header_text(req, name).map(Cow::into_owned)
}

impl FromRequest for Sdk {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Sdk::extract(req))
    }
}

impl Sdk {
    fn extract(req: &HttpRequest) -> Result<Sdk, ApiError> {
        let state =
            |what: &str| ApiError::from(Error::Internal(format!("app state missing: {what}")));
        let service = req
            .app_data::<web::Data<VisitorService>>()
            .ok_or_else(|| state("VisitorService"))?
            .clone();
        let caches = req
            .app_data::<web::Data<SdkCaches>>()
            .ok_or_else(|| state("SdkCaches"))?
            .clone();
        let key = header_text(req, SITE_KEY_HEADER)
            .map(|k| SecretHash::of(&k))
            .ok_or(Error::MissingCredentials)?;
        let origin = header_text(req, header::ORIGIN.as_str());
        let cached = match caches.key(&key) {
            Some(Cached::Known(gate)) => {
                gate.gate.admits_origin(origin.as_deref())?;
                Some(gate)
            }
            Some(Cached::Unknown) => return Err(Error::InvalidCredentials.into()),
            None => None,
        };
        Ok(Sdk {
            key,
            // Kept for a load only: a cached gate has checked it.
            origin: origin.filter(|_| cached.is_none()).map(Cow::into_owned),
            session_token: header_value(req, SESSION_HEADER),
            cached,
            service,
            caches,
        })
    }
}

/// Loads a key's gate from the store, caches it (with its config body)
/// and checks the request's origin against it.
fn load(
    service: &VisitorService,
    caches: &SdkCaches,
    key: &SecretHash,
    origin: Option<&str>,
) -> Result<Arc<CachedGate>, Error> {
    let epoch = caches.epoch();
    let found = service.gate(key)?.map(|gate| {
        Arc::new(CachedGate {
            config_body: ConfigView::body(&gate),
            gate,
        })
    });
    caches.store_key(key.clone(), found.clone(), epoch);
    let gate = found.ok_or(Error::InvalidCredentials)?;
    gate.gate.admits_origin(origin)?;
    Ok(gate)
}

/// What a use case run by [`Sdk::run`] is given.
pub struct SdkCall<'a> {
    /// The visitor service.
    pub service: &'a VisitorService,
    /// The site's gate.
    pub gate: &'a SiteGate,
    /// The hash of the request's site key.
    pub key: &'a SecretHash,
    /// The request's session token, if any.
    pub session_token: Option<&'a str>,
}

impl Sdk {
    /// The key's gate with its config body, checked against the request's
    /// origin: from the cache with no blocking-pool hop (the origin was
    /// checked as the request was extracted), else loaded in one.
    pub async fn gate(&self) -> Result<Arc<CachedGate>, ApiError> {
        if let Some(gate) = &self.cached {
            return Ok(gate.clone());
        }
        let (caches, key, origin) = (self.caches.clone(), self.key.clone(), self.origin.clone());
        run(&self.service, move |service| {
            load(service, &caches, &key, origin.as_deref())
        })
        .await
    }

    /// Runs a use case on the key's gate in one blocking-pool hop (the
    /// gate is loaded, and the origin checked, in the same hop when it is
    /// not cached).
    pub async fn run<T, F>(self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(SdkCall<'_>) -> Result<T, Error> + Send + 'static,
    {
        let Sdk {
            key,
            origin,
            session_token,
            cached,
            service,
            caches,
        } = self;
        run(&service, move |service| {
            let gate = match cached {
                Some(gate) => gate,
                None => load(service, &caches, &key, origin.as_deref())?,
            };
            f(SdkCall {
                service,
                gate: &gate.gate,
                key: &key,
                session_token: session_token.as_deref(),
            })
        })
        .await
    }
}

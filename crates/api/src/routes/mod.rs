//! Every route, wired in [`configure`].

use std::fmt::Display;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, ResponseError};

use crate::error::ApiError;

pub mod content;
pub mod conversations;
pub mod health;
pub mod me;
pub mod members;
pub mod openapi;
pub mod sdk;
pub mod sites;
pub mod tickets;
pub mod widget;
pub mod widget_script;

/// The cursor of the next page, opaque to clients.
pub(crate) fn next_cursor<C: Display>(next: Option<C>) -> Option<String> {
    next.map(|c| crate::extract::encode_cursor(&c.to_string()))
}

/// A resource serving each `(method, handler)` pair, that answers any
/// other method with a 405 problem and an `Allow` header listing them.
pub(crate) fn resource(
    path: &str,
    routes: impl IntoIterator<Item = (Method, actix_web::Route)>,
) -> actix_web::Resource {
    let mut resource = web::resource(path);
    let mut allowed = Vec::new();
    for (method, route) in routes {
        allowed.push(method.to_string());
        resource = resource.route(route.method(method));
    }
    let allow = allowed.join(", ");
    resource.default_service(web::to(move || {
        let allow = allow.clone();
        async move {
            let mut response = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("This path allows {allow}."),
            )
            .error_response();
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
    }))
}

/// The dashboard API under `/api/v1`.
pub fn dashboard(cfg: &mut web::ServiceConfig) {
    use Method as M;
    cfg.service(resource("/me", [(M::GET, web::to(me::me))]))
        .service(resource(
            "/members",
            [
                (M::GET, web::to(members::list)),
                (M::POST, web::to(members::add)),
            ],
        ))
        .service(resource(
            "/members/{memberId}",
            [(M::DELETE, web::to(members::remove))],
        ))
        .service(resource(
            "/sites",
            [
                (M::GET, web::to(sites::list)),
                (M::POST, web::to(sites::create)),
            ],
        ))
        .service(resource(
            "/sites/{siteId}",
            [
                (M::GET, web::to(sites::get)),
                (M::PATCH, web::to(sites::update)),
                (M::DELETE, web::to(sites::delete)),
            ],
        ))
        .service(resource(
            "/sites/{siteId}/api-key",
            [(M::POST, web::to(sites::regenerate_key))],
        ))
        .service(resource(
            "/sites/{siteId}/mapping",
            [(M::PUT, web::to(sites::set_mapping))],
        ))
        .service(resource(
            "/sites/{siteId}/identity-secret",
            [(M::POST, web::to(sites::identity_secret))],
        ))
        .service(resource(
            "/sites/{siteId}/widget",
            [
                (M::GET, web::to(widget::get)),
                (M::PUT, web::to(widget::save)),
            ],
        ))
        .service(resource(
            "/sites/{siteId}/widget/publish",
            [(M::POST, web::to(widget::publish))],
        ))
        .service(resource(
            "/sites/{siteId}/widget/pause",
            [(M::POST, web::to(widget::pause))],
        ))
        .service(resource(
            "/sites/{siteId}/content",
            [
                (M::GET, web::to(content::list)),
                (M::POST, web::to(content::create)),
            ],
        ))
        .service(resource(
            "/sites/{siteId}/content/{contentId}",
            [
                (M::GET, web::to(content::get)),
                (M::PATCH, web::to(content::patch)),
            ],
        ))
        .service(resource(
            "/sites/{siteId}/conversations",
            [(M::GET, web::to(conversations::list))],
        ))
        .service(resource(
            "/sites/{siteId}/conversations/{sessionId}",
            [(M::GET, web::to(conversations::get))],
        ))
        .service(resource(
            "/sites/{siteId}/conversations/{sessionId}/export",
            [(M::GET, web::to(conversations::export))],
        ))
        .service(resource(
            "/sites/{siteId}/tickets",
            [(M::GET, web::to(tickets::list))],
        ))
        .service(resource(
            "/sites/{siteId}/tickets/{ticketId}",
            [
                (M::GET, web::to(tickets::get)),
                (M::PATCH, web::to(tickets::patch)),
            ],
        ));
}

/// The widget SDK API under `/api/v1/sdk`.
pub fn sdk_routes(cfg: &mut web::ServiceConfig) {
    use Method as M;
    cfg.service(resource("/chat/config", [(M::GET, web::to(sdk::config))]))
        .service(resource(
            "/chat/sessions",
            [(M::POST, web::to(sdk::open_session))],
        ))
        .service(resource(
            "/chat/sessions/{sessionId}/messages",
            [
                (M::GET, web::to(sdk::list_messages)),
                (M::POST, web::to(sdk::ask)),
            ],
        ))
        .service(resource(
            "/chat/messages/{messageId}/feedback",
            [(M::PUT, web::to(sdk::vote))],
        ))
        .service(resource(
            "/chat/sessions/{sessionId}/tickets",
            [(M::POST, web::to(sdk::open_ticket))],
        ));
}

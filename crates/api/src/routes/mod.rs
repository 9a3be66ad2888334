//! Every route, wired in [`configure`].

use std::fmt::Display;

use actix_web::web;

use crate::error::ApiError;

pub mod content;
pub mod health;
pub mod me;
pub mod members;
pub mod openapi;
pub mod sites;
pub mod widget;

/// The cursor of the next page, opaque to clients.
pub(crate) fn next_cursor<C: Display>(next: Option<C>) -> Option<String> {
    next.map(|c| crate::extract::encode_cursor(&c.to_string()))
}

/// A resource that answers unknown methods with a 405 problem.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<actix_web::HttpResponse, _>(ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "This method is not allowed on this path.",
        ))
    }))
}

/// The dashboard API under `/api/v1`.
pub fn dashboard(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/me").route(web::get().to(me::me)))
        .service(
            resource("/members")
                .route(web::get().to(members::list))
                .route(web::post().to(members::add)),
        )
        .service(resource("/members/{memberId}").route(web::delete().to(members::remove)))
        .service(
            resource("/sites")
                .route(web::get().to(sites::list))
                .route(web::post().to(sites::create)),
        )
        .service(
            resource("/sites/{siteId}")
                .route(web::get().to(sites::get))
                .route(web::patch().to(sites::update))
                .route(web::delete().to(sites::delete)),
        )
        .service(resource("/sites/{siteId}/api-key").route(web::post().to(sites::regenerate_key)))
        .service(resource("/sites/{siteId}/mapping").route(web::put().to(sites::set_mapping)))
        .service(
            resource("/sites/{siteId}/identity-secret")
                .route(web::post().to(sites::identity_secret)),
        )
        .service(
            resource("/sites/{siteId}/widget")
                .route(web::get().to(widget::get))
                .route(web::put().to(widget::save)),
        )
        .service(resource("/sites/{siteId}/widget/publish").route(web::post().to(widget::publish)))
        .service(resource("/sites/{siteId}/widget/pause").route(web::post().to(widget::pause)))
        .service(
            resource("/sites/{siteId}/content")
                .route(web::get().to(content::list))
                .route(web::post().to(content::create)),
        )
        .service(
            resource("/sites/{siteId}/content/{contentId}")
                .route(web::get().to(content::get))
                .route(web::patch().to(content::patch)),
        );
}

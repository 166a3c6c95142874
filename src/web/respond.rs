//! Responses: `ETag` from a version, `201` with `Location`, and pages with their
//! `Link: rel="next"` header.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::common::pagination::Page;

/// Whether the request's `Accept` header names `media` itself (not through `*/*`): how a
/// client asks for CSV or another representation than JSON.
pub fn accepts(req: &HttpRequest, media: &str) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            part.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(media))
        })
}

/// A CSV download named `filename`.
pub fn csv_download(body: Vec<u8>, filename: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body)
}

/// The `ETag` value of a version: a strong validator, `"<version>"`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// A 200 JSON response with the resource's `ETag`.
pub fn ok_with_etag<T: Serialize>(body: &T, version: i64) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

/// A 200 response of JSON already written out, with its entity tag (`etag(version)` for a
/// versioned resource, as [`ok_with_etag`] sends it): for answers kept in memory.
pub fn ok_json_with_etag(body: actix_web::web::Bytes, tag: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, tag))
        .content_type(actix_web::http::header::ContentType::json())
        .body(body)
}

/// A 201 JSON response with `Location` and `ETag`.
pub fn created<T: Serialize>(body: &T, location: &str, version: i64) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

/// A page of a list as a response: 200 with a `Link: rel="next"` header when there is a
/// next page.
pub trait PageResponse {
    /// The 200 response for `req`.
    fn respond(&self, req: &HttpRequest) -> HttpResponse;
}

impl<T: Serialize> PageResponse for Page<T> {
    fn respond(&self, req: &HttpRequest) -> HttpResponse {
        let mut response = HttpResponse::Ok();
        if let Some(cursor) = &self.next_cursor {
            response.insert_header((header::LINK, next_link(req, cursor)));
        }
        response.json(self)
    }
}

/// `<path?query-with-this-cursor>; rel="next"`, keeping every other parameter.
fn next_link(req: &HttpRequest, cursor: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        if name != "cursor" {
            query.append_pair(&name, &value);
        }
    }
    query.append_pair("cursor", cursor);
    format!("<{}?{}>; rel=\"next\"", req.path(), query.finish())
}

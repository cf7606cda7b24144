//! `GET /openapi.json`: the API's description, built once at start-up from the route table.

use actix_web::{HttpResponse, web};

use crate::error::{ApiError, mime_json};
use crate::openapi::ApiDocument;
use crate::openapi::schemas::document;
use crate::routes::Body;

/// An OpenAPI 3.1 document.
pub const DOCUMENT: Body = Body {
    name: "OpenApiDocument",
    schema: document,
};

/// The document, or 404 when `docs.enabled` is off (then it was never built).
pub async fn openapi(document: Option<web::Data<ApiDocument>>) -> Result<HttpResponse, ApiError> {
    let document = document.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CONTENT_TYPE, mime_json()))
        .body(document.json()))
}

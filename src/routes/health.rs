//! Probes: `/healthz` (the process answers) and `/readyz` (fresh signing keys are loaded).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::authenticator::Authenticator;

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when a fresh key set is loaded, else 503 saying why in a fixed
/// vocabulary. The fetch error itself (which can name internal hosts) goes only to the log.
pub async fn readyz(auth: web::Data<Authenticator>) -> HttpResponse {
    let status = auth.keys().status();
    let since = status.since_last_success.map(|d| d.as_secs());
    if status.fresh {
        return HttpResponse::Ok().json(json!({
            "status": "ready",
            "keys": status.kids.len(),
            "last_refresh_secs_ago": since,
        }));
    }
    let reason = match since {
        None => "no signing keys loaded yet".to_owned(),
        Some(secs) => format!("signing keys are stale: last successful refresh {secs}s ago"),
    };
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({
        "message": "Not ready",
        "status": "not ready",
        "reason": reason,
        "key_fetch": if status.last_error.is_some() { "failing" } else { "ok" },
        "retry_in_secs": status.next_attempt_in.map(|d| d.as_secs()),
    }))
}

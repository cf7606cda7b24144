//! Probes: `/healthz` (the process answers) and `/readyz` (fresh signing keys are loaded).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::authenticator::Authenticator;
use crate::auth::store::KeyStatus;
use crate::openapi::schemas::{
    constant, integer, nullable_integer, object, one_of, string, strings,
};
use crate::route::Body;

/// Where the server is in its life: once draining (a stop signal came), `/readyz` answers
/// 503 so balancers stop sending, while requests are still served.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: std::sync::atomic::AtomicBool,
}

impl Lifecycle {
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `{"status": "ok"}`.
pub const HEALTHY: Body = Body {
    name: "Healthy",
    schema: || object([("status", constant("ok"))], &["status"]),
};

/// `{"status": "ready", "keys": …, "last_refresh_secs_ago": …}`.
pub const READY: Body = Body {
    name: "Ready",
    schema: || {
        object(
            [
                ("status", constant("ready")),
                ("keys", integer("Signing keys loaded, all issuers together")),
                (
                    "last_refresh_secs_ago",
                    nullable_integer("Seconds since the oldest successful key fetch"),
                ),
                ("unknown_kids", unknown_kids_schema()),
            ],
            &["status", "keys", "last_refresh_secs_ago", "unknown_kids"],
        )
    },
};

/// Why `/readyz` is not ready, in a fixed vocabulary (never the fetch error itself).
pub const NOT_READY: Body = Body {
    name: "NotReady",
    schema: || {
        let state = || one_of(["ok", "failing"]);
        object(
            [
                ("message", constant("Not ready")),
                ("status", constant("not ready")),
                (
                    "reason",
                    string("Why: no keys yet, stale keys, or shutting down"),
                ),
                ("key_fetch", state()),
                ("discovery", state()),
                (
                    "retry_in_secs",
                    nullable_integer("Seconds until the next key fetch"),
                ),
                (
                    "issuers_not_ready",
                    strings("With several issuers: the ones not ready"),
                ),
                ("unknown_kids", unknown_kids_schema()),
            ],
            &["message", "status", "reason"],
        )
    },
};

/// What tokens with a `kid` not in the key set are doing: whether the cooldown suppresses
/// their refetches, and how many could not be checked because the issuer was unreachable.
fn unknown_kids_schema() -> utoipa::openapi::schema::Schema {
    object(
        [
            ("refetch", one_of(["allowed", "suppressed"])),
            (
                "refetch_in_secs",
                nullable_integer("While suppressed: seconds until the cooldown ends"),
            ),
            (
                "suppressed",
                integer("Refetches the current cooldown suppressed"),
            ),
            (
                "unchecked",
                integer(
                    "Tokens answered 503 since the last successful key fetch because their kid \
                     is not in the key set and the issuer could not be asked",
                ),
            ),
            (
                "last_unchecked_secs_ago",
                nullable_integer("Seconds since the last such token"),
            ),
        ],
        &["refetch", "suppressed", "unchecked"],
    )
}

/// The `unknown_kids` member of both `/readyz` answers, all issuers together. It never
/// changes readiness: tokens with random `kid`s must not be able to take replicas out of a
/// balancer.
fn unknown_kids(statuses: &[KeyStatus]) -> serde_json::Value {
    let suppressed_for = statuses
        .iter()
        .filter_map(|s| s.refetch_suppressed_for)
        .max();
    json!({
        "refetch": if suppressed_for.is_some() { "suppressed" } else { "allowed" },
        "refetch_in_secs": suppressed_for.map(|d| d.as_secs_f64().ceil() as u64),
        "suppressed": statuses.iter().map(|s| s.suppressed_refetches).sum::<u64>(),
        "unchecked": statuses.iter().map(|s| s.unchecked_kids).sum::<u64>(),
        "last_unchecked_secs_ago": statuses
            .iter()
            .filter_map(|s| s.since_unchecked_kid)
            .min()
            .map(|d| d.as_secs()),
    })
}

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when every issuer has a fresh key set loaded, else 503 saying why in a
/// fixed vocabulary, and naming the issuers that are not ready. The fetch error itself (which
/// can name internal hosts) goes only to the log.
pub async fn readyz(
    auth: web::Data<Authenticator>,
    lifecycle: Option<web::Data<Lifecycle>>,
) -> HttpResponse {
    if lifecycle.is_some_and(|l| l.is_draining()) {
        return HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({
            "message": "Not ready",
            "status": "not ready",
            "reason": "shutting down",
        }));
    }
    let stores = auth.key_stores();
    let statuses: Vec<_> = stores.iter().map(|store| store.status()).collect();
    let not_ready: Vec<&str> = stores
        .iter()
        .zip(&statuses)
        .filter(|(_, status)| !status.fresh)
        .map(|(store, _)| store.issuer())
        .collect();
    let Some(status) = statuses.iter().find(|s| !s.fresh) else {
        let oldest = statuses
            .iter()
            .filter_map(|s| s.since_last_success)
            .max()
            .map(|d| d.as_secs());
        return HttpResponse::Ok().json(json!({
            "status": "ready",
            "keys": statuses.iter().map(|s| s.kids.len()).sum::<usize>(),
            "last_refresh_secs_ago": oldest,
            "unknown_kids": unknown_kids(&statuses),
        }));
    };
    let since = status.since_last_success.map(|d| d.as_secs());
    let reason = match since {
        None => "no signing keys loaded yet".to_owned(),
        Some(secs) => format!("signing keys are stale: last successful refresh {secs}s ago"),
    };
    let failing = |yes: bool| if yes { "failing" } else { "ok" };
    let mut body = json!({
        "message": "Not ready",
        "status": "not ready",
        "reason": reason,
        "key_fetch": failing(status.last_error.is_some()),
        "discovery": failing(status.discovery_failing),
        "retry_in_secs": status.next_attempt_in.map(|d| d.as_secs()),
        "unknown_kids": unknown_kids(&statuses),
    });
    // With several issuers, which ones (configured URLs, never error text).
    if stores.len() > 1 {
        body["issuers_not_ready"] = json!(not_ready);
    }
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(body)
}

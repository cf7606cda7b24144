//! The description as served at `/openapi.json`, and Swagger UI's settings for `/docs`.

use std::sync::{Arc, RwLock};

use actix_web::web::Bytes;

use super::{Context, DPOP, DocumentError, describe};
use crate::route::Route;
use crate::settings::{DpopMode, TokenEndpoint};

/// The description as served: JSON, built at start-up, and built again once if the issuer's
/// discovery document names its token endpoint (when the configuration could only assume one).
pub struct ApiDocument {
    routes: &'static [Route],
    context: Context,
    /// The JSON, and the discovered token endpoint it was built with.
    built: RwLock<(Option<String>, Bytes)>,
    /// Swagger UI's settings for the page that shows it.
    page: Arc<utoipa_swagger_ui::Config<'static>>,
}

impl ApiDocument {
    /// Describes `routes` as this server serves them.
    pub fn new(routes: &'static [Route], context: Context) -> Result<Self, DocumentError> {
        let json = json(routes, &context)?;
        let page = Arc::new(swagger_ui(&context));
        Ok(ApiDocument {
            routes,
            context,
            built: RwLock::new((None, json)),
            page,
        })
    }

    /// Swagger UI's settings (`/docs`).
    pub fn swagger_ui(&self) -> Arc<utoipa_swagger_ui::Config<'static>> {
        Arc::clone(&self.page)
    }

    /// The JSON text (a cheap copy of shared bytes), naming `discovered` as the token
    /// endpoint unless the configuration knows the real one.
    pub fn json(&self, discovered: Option<String>) -> Bytes {
        let discovered = self.discovered(discovered);
        {
            let built = self.built.read().unwrap_or_else(|p| p.into_inner());
            if built.0 == discovered {
                return built.1.clone();
            }
        }
        let mut context = self.context.clone();
        if let Some(url) = &discovered {
            context.token_endpoint = TokenEndpoint::Discovered(url.clone());
        }
        match json(self.routes, &context) {
            Ok(json) => {
                *self.built.write().unwrap_or_else(|p| p.into_inner()) = (discovered, json.clone());
                json
            }
            // The same routes were described at start-up; only a URL changed.
            Err(error) => {
                log::error!("docs: cannot describe the API again: {error}");
                self.built
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .1
                    .clone()
            }
        }
    }

    /// The token endpoint the description names, given the `discovered` one.
    pub fn token_endpoint(&self, discovered: Option<String>) -> String {
        self.discovered(discovered)
            .unwrap_or_else(|| self.context.token_endpoint.url().to_owned())
    }

    fn discovered(&self, discovered: Option<String>) -> Option<String> {
        discovered.filter(|_| matches!(self.context.token_endpoint, TokenEndpoint::Assumed(_)))
    }
}

impl std::fmt::Debug for ApiDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiDocument")
            .field("routes", &self.routes.len())
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// Swagger UI showing `/openapi.json`, with no validator badge (it would load an image from
/// validator.swagger.io). Its Authorize dialog asks for the token with the first audience as a
/// query parameter: Swagger UI's client-credentials form has no field for it, and an Auth0
/// token request without one is refused unless the tenant has a default audience.
fn swagger_ui(context: &Context) -> utoipa_swagger_ui::Config<'static> {
    let mut oauth = utoipa_swagger_ui::oauth::Config::new().app_name("Hello World API");
    if let Some(audience) = context.audiences.first() {
        oauth = oauth
            .additional_query_string_params([("audience".to_owned(), audience.clone())].into());
    }
    utoipa_swagger_ui::Config::with_oauth_config(["/openapi.json"], oauth)
        .validator_url("none")
        .display_request_duration(true)
        .persist_authorization(false)
}

fn json(routes: &[Route], context: &Context) -> Result<Bytes, DocumentError> {
    let failed = |e: serde_json::Error| DocumentError::Json(e.to_string());
    let mut document = serde_json::to_value(describe(routes, context)?).map_err(failed)?;
    // utoipa knows no `DPoP` HTTP scheme; OpenAPI takes any registered one (RFC 9449 §7.1).
    if context.dpop != DpopMode::Disabled
        && let Some(schemes) = document
            .pointer_mut("/components/securitySchemes")
            .and_then(|s| s.as_object_mut())
    {
        schemes.insert(
            DPOP.to_owned(),
            serde_json::json!({
                "type": "http",
                "scheme": "DPoP",
                "description": format!(
                    "RFC 9449: `Authorization: DPoP <token>` with a token bound to the client's \
                     key (`cnf.jkt`), and on every request a fresh `DPoP` proof header signed \
                     with that key ({}). Swagger UI cannot sign proofs: use \
                     `hello-world-api dpop`.",
                    context.dpop_algorithms
                ),
            }),
        );
    }
    Ok(Bytes::from(serde_json::to_vec(&document).map_err(failed)?))
}

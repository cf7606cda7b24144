//! The API's OpenAPI 3.1 description, generated from the route table ([`crate::routes::ROUTES`])
//! that also registers the routes, so the two cannot drift apart: each route's method, path,
//! summary and the handler's own answers come from its declaration; who may call it (the
//! security requirement, and the 401, 403 and 503 a token check can answer) from its policy;
//! the answers every route can get from the framework (404, 405, 431) are added to all.
//!
//! It is built at start-up ([`ApiDocument`]) and served at `GET /openapi.json` when
//! `docs.enabled` is on; `GET /docs` shows it in Swagger UI ([`crate::routes`]).

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::Method;
use derive_more::{Display, Error};
use utoipa::openapi::info::{InfoBuilder, LicenseBuilder};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ComponentsBuilder, Ref, Schema};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{OpenApi, OpenApiBuilder, Paths, RefOr, Required};

use crate::auth::policy::Policy;
use crate::error::ErrorBody;
use crate::route::Route;
use crate::settings::{DpopMode, Settings, TokenEndpoint};

/// The name of the bearer JWT security scheme.
pub const BEARER: &str = "bearerAuth";
/// The name of the OAuth 2.0 (client credentials) security scheme.
pub const OAUTH2: &str = "oauth2";
/// The name of the DPoP (RFC 9449) security scheme.
pub const DPOP: &str = "dpop";
/// The name of the error body's schema.
pub const ERROR: &str = "Error";

/// What the description needs beyond the routes: how this server was configured.
#[derive(Debug, Clone)]
pub struct Context {
    /// `auth.admin_permission`: what `read:admin-messages` is renamed to.
    pub admin_permission: String,
    /// Where the permissions are read (`auth.permissions_claim`).
    pub permissions_claim: String,
    /// Where a client gets a token with the client-credentials grant.
    pub token_endpoint: TokenEndpoint,
    /// The audiences a token must carry (one is the `audience` of a token request to Auth0).
    pub audiences: Vec<String>,
    /// Whether requests to hosts other than loopback are refused with 421 (development issuer).
    pub loopback_only: bool,
    /// `auth.dpop`, and the proof algorithms (space-separated).
    pub dpop: DpopMode,
    pub dpop_algorithms: String,
}

impl Context {
    pub fn new(settings: &Settings) -> Self {
        Context {
            admin_permission: settings.auth.admin_permission.clone(),
            permissions_claim: settings.auth.permissions_claim.clone(),
            token_endpoint: settings.docs.token_endpoint.clone(),
            audiences: settings.auth.audiences.clone(),
            loopback_only: settings.dev_issuer.is_some(),
            dpop: settings.auth.dpop.mode,
            dpop_algorithms: settings
                .auth
                .dpop
                .algorithms
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Why the routes cannot be described.
#[derive(Debug, Display, Error, PartialEq, Eq)]
pub enum DocumentError {
    #[display("route {method} {path}: OpenAPI cannot describe the method {method}")]
    Method {
        #[error(not(source))]
        method: String,
        #[error(not(source))]
        path: String,
    },
    #[display("route {method} {path} is declared twice")]
    Duplicate {
        #[error(not(source))]
        method: String,
        #[error(not(source))]
        path: String,
    },
    #[display("route {method} {path}: its handler declares {status}, which its policy answers")]
    Status {
        #[error(not(source))]
        method: String,
        #[error(not(source))]
        path: String,
        #[error(not(source))]
        status: u16,
    },
    #[display("two different schemas are named {name}")]
    Schema {
        #[error(not(source))]
        name: String,
    },
    #[display("the description does not serialise: {_0}")]
    Json(#[error(not(source))] String),
}

/// The OpenAPI 3.1 description of `routes`.
pub fn describe(routes: &[Route], context: &Context) -> Result<OpenApi, DocumentError> {
    let mut schemas: BTreeMap<&str, Schema> = BTreeMap::new();
    schemas.insert(ERROR, ErrorBody::schema());
    let mut paths = Paths::new();
    let mut seen: BTreeSet<(String, &str)> = BTreeSet::new();
    // Each permission, and the routes that require it.
    let mut scopes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut any_token = false;

    for route in routes {
        let name = || (route.method.to_string(), route.path.to_owned());
        let method = http_method(&route.method).ok_or_else(|| {
            let (method, path) = name();
            DocumentError::Method { method, path }
        })?;
        if !seen.insert((route.method.to_string(), route.path)) {
            let (method, path) = name();
            return Err(DocumentError::Duplicate { method, path });
        }
        let policy = route
            .policy
            .with_admin_permission(&context.admin_permission);
        let (path, parameters) = template(route.path);

        let mut responses: BTreeMap<String, RefOr<Response>> = BTreeMap::new();
        for answer in route.answers {
            let schema = (answer.body.schema)();
            match schemas.get(answer.body.name) {
                Some(known) if *known != schema => {
                    return Err(DocumentError::Schema {
                        name: answer.body.name.to_owned(),
                    });
                }
                _ => {
                    schemas.insert(answer.body.name, schema);
                }
            }
            responses.insert(
                answer.status.to_string(),
                json_response(answer.description, answer.body.name).into(),
            );
        }
        let mut shared = vec![
            (404, "NotFound"),
            (405, "MethodNotAllowed"),
            (431, "HeadersTooLarge"),
        ];
        if context.loopback_only {
            shared.push((421, "MisdirectedRequest"));
        }
        let mut security = Vec::new();
        if let Policy::Authenticated | Policy::Permissions(_) = policy {
            any_token = true;
            shared.extend([(401, "Unauthorized"), (503, "KeysUnavailable")]);
            let required: &[&str] = match policy {
                Policy::Permissions(required) => required,
                _ => &[],
            };
            for permission in required {
                scopes
                    .entry(permission)
                    .or_default()
                    .push(format!("{} {}", route.method, route.path));
            }
            if !required.is_empty() {
                insert_new(
                    &mut responses,
                    403,
                    forbidden(required, context.dpop != DpopMode::Disabled).into(),
                    route,
                )?;
            }
            security = Vec::new();
            if context.dpop != DpopMode::Required {
                security.push(SecurityRequirement::new(BEARER, Vec::<String>::new()));
            }
            security.push(SecurityRequirement::new(OAUTH2, required.iter().copied()));
            if context.dpop != DpopMode::Disabled {
                security.push(SecurityRequirement::new(DPOP, Vec::<String>::new()));
            }
        }
        for (status, component) in shared {
            insert_new(
                &mut responses,
                status,
                Ref::from_response_name(component).into(),
                route,
            )?;
        }

        let mut operation = OperationBuilder::new()
            .summary(Some(route.summary))
            .description(Some(who_may_call(policy, &context.permissions_claim)))
            .operation_id(Some(operation_id(&route.method, route.path)))
            .securities(Some(security));
        for parameter in parameters {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(parameter)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(schemas::string("A path segment"))),
            );
        }
        let mut operation = operation.build();
        operation.responses.responses = responses;
        paths.add_path_operation(path, vec![method], operation);
    }

    let mut components = ComponentsBuilder::new()
        .response(
            "NotFound",
            error_response("Not Found: no route at this path (any path not listed here)"),
        )
        .response(
            "MethodNotAllowed",
            error_response("Method Not Allowed: the path is known, the method is not"),
        )
        .response(
            "HeadersTooLarge",
            error_response(
                "Request Header Fields Too Large: the request's header names and values add up \
                 to more than server.max_header_bytes",
            ),
        );
    if context.loopback_only {
        components = components.response(
            "MisdirectedRequest",
            error_response(
                "Misdirected Request: while the development issuer runs, only requests to \
                 localhost, 127.0.0.1 or [::1] are served",
            ),
        );
    }
    if any_token {
        components = components
            .response(
                "Unauthorized",
                unauthorized(context.dpop != DpopMode::Disabled),
            )
            .response("KeysUnavailable", keys_unavailable())
            .security_scheme(BEARER, bearer())
            .security_scheme(OAUTH2, oauth2(context, &scopes));
    }
    for (name, schema) in schemas {
        components = components.schema(name, schema);
    }

    Ok(OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Hello World API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(format!(
                    "{}.\n\nEvery answer is JSON; every error is `{{\"message\": …}}` (the \
                     `{ERROR}` schema), with the RFC 6750 `error` and `error_description` on \
                     authentication errors. Routes that need a token take it as \
                     `Authorization: Bearer <JWT>`.",
                    env!("CARGO_PKG_DESCRIPTION")
                )))
                .license(Some(
                    LicenseBuilder::new()
                        .name(env!("CARGO_PKG_LICENSE"))
                        .identifier(Some(env!("CARGO_PKG_LICENSE")))
                        .build(),
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build())
}

/// Adds a response the policy or the framework gives, refusing one the handler already declared.
fn insert_new(
    responses: &mut BTreeMap<String, RefOr<Response>>,
    status: u16,
    response: RefOr<Response>,
    route: &Route,
) -> Result<(), DocumentError> {
    if responses.insert(status.to_string(), response).is_some() {
        return Err(DocumentError::Status {
            method: route.method.to_string(),
            path: route.path.to_owned(),
            status,
        });
    }
    Ok(())
}

fn http_method(method: &Method) -> Option<HttpMethod> {
    Some(match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::OPTIONS => HttpMethod::Options,
        Method::HEAD => HttpMethod::Head,
        Method::PATCH => HttpMethod::Patch,
        Method::TRACE => HttpMethod::Trace,
        _ => return None,
    })
}

/// The OpenAPI path template of an actix-web path (`{id:\d+}` becomes `{id}`) and the names of
/// its parameters.
fn template(path: &str) -> (String, Vec<String>) {
    let mut template = String::with_capacity(path.len());
    let mut parameters = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        template.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 1..start + end];
        let name = inner.split(':').next().unwrap_or(inner);
        template.push('{');
        template.push_str(name);
        template.push('}');
        parameters.push(name.to_owned());
        rest = &rest[start + end + 1..];
    }
    template.push_str(rest);
    (template, parameters)
}

/// `get_api_messages_public`.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for word in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !word.is_empty() {
            id.push('_');
            id.push_str(word);
        }
    }
    id
}

/// Who may call a route, in words.
fn who_may_call(policy: Policy, permissions_claim: &str) -> String {
    match policy {
        Policy::Public => "Public: no token needed.".to_owned(),
        Policy::Authenticated => "Requires a valid access token.".to_owned(),
        Policy::Permissions(required) => format!(
            "Requires a valid access token granting {} (read from the token's \
             `{permissions_claim}` claim; as OAuth 2.0 scopes: the same names).",
            listed(required)
        ),
    }
}

/// `` `a` `` or `` `a` and `b` ``.
fn listed(permissions: &[&str]) -> String {
    let quoted: Vec<String> = permissions.iter().map(|p| format!("`{p}`")).collect();
    match quoted.as_slice() {
        [one] => format!("the permission {one}"),
        [init @ .., last] => format!("the permissions {} and {last}", init.join(", ")),
        [] => "no permission".to_owned(),
    }
}

mod responses;
pub mod schemas;
mod served;

pub use served::ApiDocument;

use responses::{
    bearer, error_response, forbidden, json_response, keys_unavailable, oauth2, unauthorized,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{Answer, Body};
    use crate::routes::ROUTES;

    const EMPTY: Body = Body {
        name: "Empty",
        schema: || schemas::object([], &[]),
    };

    fn context(loopback_only: bool) -> Context {
        Context {
            admin_permission: "read:admin-messages".to_owned(),
            permissions_claim: "/permissions".to_owned(),
            token_endpoint: TokenEndpoint::Known("http://localhost:6061/oauth/token".to_owned()),
            audiences: vec!["https://hello-world.example.com".to_owned()],
            loopback_only,
            dpop: DpopMode::Allowed,
            dpop_algorithms: "ES256".to_owned(),
        }
    }

    fn route(path: &'static str, policy: Policy, answers: &'static [Answer]) -> Route {
        Route {
            method: Method::GET,
            path,
            policy,
            summary: "A route",
            answers,
            handler: |route| route,
        }
    }

    #[test]
    fn an_actix_path_with_parameters_becomes_an_openapi_template() {
        assert_eq!(
            template(r"/api/items/{id:\d+}/notes/{note}"),
            (
                "/api/items/{id}/notes/{note}".to_owned(),
                vec!["id".to_owned(), "note".to_owned()]
            )
        );
        assert_eq!(template("/healthz"), ("/healthz".to_owned(), vec![]));
        assert_eq!(
            operation_id(&Method::GET, "/api/messages/public"),
            "get_api_messages_public"
        );
    }

    #[test]
    fn a_route_declared_twice_or_declaring_a_status_its_policy_answers_is_refused() {
        let twice = [
            route("/a", Policy::Public, &[]),
            route("/a", Policy::Public, &[]),
        ];
        assert!(matches!(
            describe(&twice, &context(false)),
            Err(DocumentError::Duplicate { .. })
        ));
        let clash = [route(
            "/a",
            Policy::Authenticated,
            &[Answer {
                status: 401,
                description: "mine",
                body: EMPTY,
            }],
        )];
        assert!(matches!(
            describe(&clash, &context(false)),
            Err(DocumentError::Status { status: 401, .. })
        ));
    }

    #[test]
    fn while_the_development_issuer_runs_every_route_documents_421() {
        for loopback_only in [false, true] {
            let json =
                serde_json::to_value(describe(ROUTES, &context(loopback_only)).unwrap()).unwrap();
            for route in ROUTES {
                let responses = &json["paths"][route.path]["get"]["responses"];
                assert_eq!(
                    responses.get("421").is_some(),
                    loopback_only,
                    "{}",
                    route.path
                );
            }
            assert_eq!(
                json["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"],
                "http://localhost:6061/oauth/token"
            );
        }
    }
}

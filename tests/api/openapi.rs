//! The description at `/openapi.json`: generated from the route table, it lists exactly the
//! routes the app serves, each with the security its policy demands, and every answer it
//! documents is one the app really gives, with a body and headers its schemas accept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hello_world_api::auth::policy::Policy;
use hello_world_api::issuer::JwksBehaviour;
use hello_world_api::routes::{READ_ADMIN_MESSAGES, ROUTES};
use serde_json::{Value, json};
use test_support::{Reply, TestApp, send, spawn_app};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The description the app serves, checked to come as JSON with the security headers.
async fn document(app: &TestApp) -> Value {
    let reply = app.get("/openapi.json").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.header("content-security-policy"),
        Some("default-src 'self'; frame-ancestors 'none'")
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.body["openapi"], "3.1.0", "{}", reply.body);
    reply.body
}

/// Every operation of the description: path, method (lower case) and operation.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let paths = document["paths"].as_object().expect("paths");
    let mut all = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
            all.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    all
}

/// `value`, or what its `$ref` points at in the document.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => document
            .pointer(reference.strip_prefix('#').expect("a local $ref"))
            .unwrap_or_else(|| panic!("{reference} resolves")),
        None => value,
    }
}

/// Asserts that `instance` is valid under `schema`, a schema of the document whose `$ref`s
/// point into its components.
fn assert_valid(document: &Value, schema: &Value, instance: &Value, what: &str) {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("{what}: the schema {schema} does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: {instance} does not match {schema}: {errors:?}"
    );
}

/// The security requirement a policy demands, with the admin permission renamed to `admin`.
fn expected_security(policy: Policy, admin: &str) -> Option<Value> {
    match policy.with_admin_permission(admin) {
        Policy::Public => None,
        Policy::Authenticated => Some(json!([{"bearerAuth": []}, {"oauth2": []}, {"dpop": []}])),
        Policy::Permissions(required) => Some(json!([
            {"bearerAuth": []},
            {"oauth2": required},
            {"dpop": []}
        ])),
    }
}

#[actix_web::test]
async fn the_description_lists_every_route_of_the_app_with_its_security_and_no_other() {
    const RENAMED: &str = "messages:admin";
    let app = TestApp::builder()
        .env("APP__AUTH__ADMIN_PERMISSION", RENAMED)
        .spawn()
        .await;
    let document = document(&app).await;

    let declared: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.path.to_owned(), r.method.as_str().to_ascii_lowercase()))
        .collect();
    let documented: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(path, method, _)| (path, method))
        .collect();
    assert_eq!(documented, declared);
    assert!(documented.contains(&("/openapi.json".to_owned(), "get".to_owned())));

    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["type"], "http", "{schemes}");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["bearerAuth"]["bearerFormat"], "JWT");
    assert_eq!(schemes["dpop"]["type"], "http", "{schemes}");
    assert_eq!(schemes["dpop"]["scheme"], "DPoP");
    let flow = &schemes["oauth2"]["flows"]["clientCredentials"];
    assert_eq!(schemes["oauth2"]["type"], "oauth2");
    assert_eq!(
        flow["tokenUrl"],
        format!("{}oauth/token", app.issuer_url),
        "{flow}"
    );
    let scopes = flow["scopes"].as_object().expect("scopes");
    assert!(scopes.contains_key(RENAMED), "{flow}");
    assert!(!scopes.contains_key(READ_ADMIN_MESSAGES), "{flow}");

    for route in ROUTES {
        let method = route.method.as_str().to_ascii_lowercase();
        let operation = &document["paths"][route.path][&method];
        let what = format!("{} {}", route.method, route.path);
        assert_eq!(operation["summary"], route.summary, "{what}");
        let security = operation.get("security").filter(|s| *s != &json!([]));
        assert_eq!(
            security,
            expected_security(route.policy, RENAMED).as_ref(),
            "{what}: {operation}"
        );
        // Each scope an operation asks for is one the scheme declares.
        for scope in security
            .and_then(|s| s[1]["oauth2"].as_array())
            .into_iter()
            .flatten()
        {
            let scope = scope.as_str().expect("scope");
            assert!(scopes.contains_key(scope), "{what}: {scope}");
            assert!(
                operation["description"]
                    .as_str()
                    .is_some_and(|d| d.contains(scope)),
                "{what}: {operation}"
            );
        }
        // The answers: the handler's own, then what the policy and the framework add.
        let mut statuses: BTreeSet<u16> = route.answers.iter().map(|a| a.status).collect();
        statuses.extend([404, 405, 431]);
        match route.policy {
            Policy::Public => {}
            Policy::Authenticated => statuses.extend([401, 503]),
            Policy::Permissions(_) => statuses.extend([401, 403, 503]),
        }
        let documented: BTreeSet<u16> = operation["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(|k| k.parse().expect("a status"))
            .collect();
        assert_eq!(documented, statuses, "{what}");
    }

    // Whatever the description lists, the app serves: no documented operation is a 404.
    let admin = app.token_with(|claims| claims["permissions"] = json!([RENAMED]));
    for (path, method, _) in operations(&document) {
        let reply = send(
            app.request(&method.to_ascii_uppercase(), &path)
                .bearer_auth(&admin),
        )
        .await;
        assert_ne!(reply.status, 404, "{method} {path}: {reply:?}");
        assert_eq!(reply.status, 200, "{method} {path}: {reply:?}");
    }
}

/// A method the description does not list for `path`, to be answered 405.
fn another_method(document: &Value, path: &str) -> &'static str {
    ["post", "put", "delete", "patch"]
        .into_iter()
        .find(|m| document["paths"][path].get(*m).is_none())
        .expect("a method the path does not serve")
}

#[actix_web::test]
async fn every_documented_answer_is_one_the_app_gives_with_a_body_and_headers_its_schemas_accept() {
    let app = spawn_app().await;
    // No key was ever fetched: protected routes (and readiness) answer 503.
    let down = TestApp::builder()
        .issuer_behaviour(JwksBehaviour::Fail(503))
        .spawn()
        .await;
    down.keys.wait_for_attempts(1).await;
    let document = document(&app).await;
    let mut provoked: BTreeMap<u16, usize> = BTreeMap::new();

    for (path, method, operation) in operations(&document) {
        let responses = operation["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{method} {path}");
        for (status, response) in responses {
            let status: u16 = status.parse().expect("a status");
            let upper = method.to_ascii_uppercase();
            let reply: Reply = match status {
                200 => send(app.request(&upper, &path).bearer_auth(app.admin_token())).await,
                401 => send(app.request(&upper, &path)).await,
                403 => send(app.request(&upper, &path).bearer_auth(app.token())).await,
                404 => {
                    let unknown = format!("{}/nowhere", path.trim_end_matches('/'));
                    assert!(document["paths"].get(&unknown).is_none());
                    send(app.request(&upper, &unknown)).await
                }
                405 => {
                    let other = another_method(&document, &path).to_ascii_uppercase();
                    send(app.request(&other, &path)).await
                }
                431 => {
                    let padding = "a".repeat(20 * 1024);
                    send(
                        app.request(&upper, &path)
                            .insert_header(("x-padding", padding.as_str())),
                    )
                    .await
                }
                503 => send(down.request(&upper, &path).bearer_auth(down.admin_token())).await,
                other => panic!("{method} {path}: no way to provoke the documented {other}"),
            };
            let what = format!("{method} {path} → {status}");
            assert_eq!(reply.status, status, "{what}: {reply:?}");
            *provoked.entry(status).or_default() += 1;

            let response = resolve(&document, response);
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{what}"
            );
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{what}"
            );
            let schema = &response["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{what}: {response}");
            assert_valid(&document, schema, &reply.body, &what);

            for (name, header) in response["headers"].as_object().into_iter().flatten() {
                let header = resolve(&document, header);
                // Every value: a 401 carries a Bearer and a DPoP challenge, one header each.
                let values: Vec<&str> = reply
                    .headers
                    .get_all(name.as_str())
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                assert!(!values.is_empty(), "{what}: no {name} header: {reply:?}");
                let schema = &header["schema"];
                for value in values {
                    let instance = match schema["type"].as_str() {
                        Some("integer") => {
                            json!(value.parse::<i64>().expect("an integer header"))
                        }
                        _ => json!(value),
                    };
                    assert_valid(&document, schema, &instance, &format!("{what}, {name}"));
                }
            }
        }
    }
    let statuses: Vec<u16> = provoked.keys().copied().collect();
    assert_eq!(
        statuses,
        [200, 401, 403, 404, 405, 431, 503],
        "{provoked:?}"
    );
}

#[actix_web::test]
async fn a_schema_rejects_a_body_it_does_not_describe() {
    // The check above must be able to fail: the documented error schema refuses a message body.
    let app = spawn_app().await;
    let document = document(&app).await;
    let error = json!({"$ref": "#/components/schemas/Error"});
    let message = json!({"$ref": "#/components/schemas/Message"});
    assert_valid(&document, &error, &json!({"message": "Not Found"}), "error");
    for (schema, body) in [
        (&error, json!({"text": "This is a public message."})),
        (&error, json!({"message": "x", "error": "teapot"})),
        (&message, json!({"message": "Not Found"})),
        (&message, json!({"text": 1})),
    ] {
        let root = json!({"components": document["components"], "allOf": [schema]});
        let validator = jsonschema::draft202012::new(&root).unwrap();
        assert!(!validator.is_valid(&body), "{schema} accepted {body}");
    }
}

#[actix_web::test]
async fn the_description_is_not_served_when_docs_are_off() {
    let app = TestApp::builder()
        .env("APP__DOCS__ENABLED", "false")
        .spawn()
        .await;
    let reply = app.get("/openapi.json").await;
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(reply.body, json!({"message": "Not Found"}));
    assert_eq!(app.get("/api/messages/public").await.status, 200);
}

#[actix_web::test]
async fn the_description_is_written_to_target_for_the_openapi_validator() {
    // tests/openapi/validate.sh validates this file with openapi-spec-validator.
    let app = spawn_app().await;
    let document = document(&app).await;
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory");
    let file = target.join("openapi.json");
    std::fs::write(&file, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written, document);
}

//! The project's real-browser tests: Debian's `chromium`, headless, driven over the DevTools
//! protocol (the `headless_chrome` crate), against the release-shaped binary on loopback.
//!
//! 1. `/docs` renders from the server alone: every request the page makes is recorded.
//! 2. Swagger UI's Authorize dialog gets a token from the development issuer (client
//!    credentials), and "Try it out" on the admin route answers 200, then 403 for the user client.
//! 3. CORS as a browser decides it: a page on the allowed origin reads the answers (the 403's
//!    `message` too); the same page on another origin reads nothing.
//!
//! Each saves a screenshot under `target/browser/`. `make test` installs chromium when it is
//! missing; run bare, these tests fail with a line saying how to install it (set `CHROME` to
//! use another binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Network;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, Element, LaunchOptions, Tab};
use hello_world_api::issuer::Issuer;
use serde_json::Value;

use test_support::{Running, empty_dir, free_port, key, serve_issuer, wait_for_port};

const BINARY: test_support::Binary = test_support::binary!();

/// The development clients of `config/local.toml`, as the README shows them.
const ADMIN_CLIENT: (&str, &str) = ("hello-world-admin", "dev-admin-secret");
const USER_CLIENT: (&str, &str) = ("hello-world-user", "dev-user-secret");

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// Chromium: `$CHROME`, else `chromium` on the `PATH`.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROME") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed: these browser tests need it. `make test` installs \
                 it (Debian: apt-get install chromium), or set CHROME to a Chrome binary."
            )
        })
}

/// A headless browser of its own: no sandbox (these tests may run as root in a container).
fn browser() -> Browser {
    let options = LaunchOptions::default_builder()
        .path(Some(chromium()))
        .sandbox(false)
        .window_size(Some((1280, 1600)))
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    Browser::new(options).expect("chromium starts")
}

/// A tab whose every request (URL) and console message are recorded.
struct Recorded {
    tab: Arc<Tab>,
    requests: Arc<Mutex<Vec<String>>>,
    console: Arc<Mutex<Vec<String>>>,
}

fn recorded_tab(browser: &Browser) -> Recorded {
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(PATIENCE);
    tab.call_method(Network::Enable {
        max_total_buffer_size: None,
        max_resource_buffer_size: None,
        max_post_data_size: None,
        report_direct_socket_traffic: None,
        enable_durable_messages: None,
    })
    .unwrap();
    tab.enable_log().unwrap();
    tab.enable_runtime().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let console = Arc::new(Mutex::new(Vec::new()));
    let (seen, said) = (Arc::clone(&requests), Arc::clone(&console));
    tab.add_event_listener(Arc::new(move |event: &Event| match event {
        Event::NetworkRequestWillBeSent(e) => {
            seen.lock().unwrap().push(e.params.request.url.clone());
        }
        Event::LogEntryAdded(e) => {
            said.lock().unwrap().push(format!(
                "{:?}: {}",
                e.params.entry.level, e.params.entry.text
            ));
        }
        Event::RuntimeConsoleAPICalled(e) => {
            let args: Vec<String> = e
                .params
                .args
                .iter()
                .filter_map(|a| a.value.as_ref().map(|v| v.to_string()))
                .collect();
            said.lock()
                .unwrap()
                .push(format!("console.{:?}: {}", e.params.Type, args.join(" ")));
        }
        _ => {}
    }))
    .unwrap();
    Recorded {
        tab,
        requests,
        console,
    }
}

/// Saves what the tab shows as `target/browser/{name}.png`.
fn screenshot(tab: &Tab, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

/// Waits until `script` (an expression) evaluates to a string, and returns it.
fn wait_for_text(tab: &Tab, script: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = tab.evaluate(script, false).unwrap().value;
        if let Some(Value::String(text)) = value {
            return text;
        }
        assert!(Instant::now() < deadline, "never true: {script}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The API with the development issuer, as `make run` starts it, on free ports.
struct MakeRun {
    _server: Running,
    api: String,
    issuer: String,
}

fn make_run(name: &str) -> MakeRun {
    let dir = empty_dir(name);
    let (api_port, issuer_port) = (free_port(), free_port());
    let issuer_port_text = issuer_port.to_string();
    let env = [
        ("APP__DEV_ISSUER__PORT", issuer_port_text.as_str()),
        ("APP__SERVER__WORKERS", "2"),
    ];
    let server = BINARY.start(&dir, &env, api_port);
    wait_for_port(issuer_port);
    MakeRun {
        _server: server,
        api: format!("http://localhost:{api_port}"),
        issuer: format!("http://localhost:{issuer_port}"),
    }
}

#[test]
fn the_docs_page_renders_every_route_with_nothing_loaded_from_outside_the_server() {
    let run = make_run("browser-docs");
    let browser = browser();
    let page = recorded_tab(&browser);
    page.tab.navigate_to(&format!("{}/docs", run.api)).unwrap();
    page.tab.wait_until_navigated().unwrap();
    page.tab.wait_for_element(ADMIN_OPERATION).unwrap();
    let title = wait_for_text(
        &page.tab,
        "document.querySelector('.info .title')?.innerText",
    );
    assert!(title.starts_with("Hello World API"), "{title}");
    let operations = wait_for_text(
        &page.tab,
        "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.innerText).join(' ')",
    );
    for path in [
        "/api/messages/public",
        "/api/messages/protected",
        "/api/messages/admin",
        "/openapi.json",
    ] {
        assert!(
            operations.split(' ').any(|p| p == path),
            "{path} in {operations}"
        );
    }
    let shot = screenshot(&page.tab, "docs");

    let requests = page.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|url| url.ends_with("/docs/swagger-ui-bundle.js")),
        "the page's own files are recorded: {requests:?}"
    );
    assert!(
        requests.iter().any(|url| url.ends_with("/openapi.json")),
        "{requests:?}"
    );
    let outside: Vec<&String> = requests
        .iter()
        .filter(|url| !url.starts_with(&format!("{}/", run.api)) && !url.starts_with("data:"))
        .collect();
    assert!(
        outside.is_empty(),
        "requests outside the server: {outside:?}"
    );
    let console = page.console.lock().unwrap().clone();
    let refused: Vec<&String> = console
        .iter()
        .filter(|line| line.contains("Content Security Policy") || line.contains("Error"))
        .collect();
    assert!(
        refused.is_empty(),
        "{refused:?} (screenshot: {})",
        shot.display()
    );
}

/// The admin route's operation in Swagger UI.
const ADMIN_OPERATION: &str = "#operations-default-get_api_messages_admin";

/// The OAuth 2.0 scheme's part of the Authorize dialog (the dialog lists `bearerAuth` too).
fn oauth2_container(tab: &Tab) -> Element<'_> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let containers = tab.find_elements(".auth-container").unwrap_or_default();
        if let Some(found) = containers.into_iter().find(|container| {
            container
                .find_element("h4")
                .and_then(|h| h.get_inner_text())
                .is_ok_and(|heading| heading.contains("oauth2"))
        }) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no oauth2 part in the Authorize dialog"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens the Authorize dialog, authorizes the OAuth 2.0 scheme with `client` (Swagger UI asks
/// the issuer's token endpoint), closes the dialog, runs the admin route, and returns the
/// status and body the page shows.
fn authorize_and_try_admin(tab: &Tab, client: (&str, &str)) -> (String, String) {
    tab.wait_for_element(".auth-wrapper .authorize")
        .unwrap()
        .click()
        .unwrap();
    let oauth2 = oauth2_container(tab);
    oauth2
        .find_element("#client_id_clientCredentials")
        .unwrap()
        .type_into(client.0)
        .unwrap();
    oauth2
        .find_element("#client_secret_clientCredentials")
        .unwrap()
        .type_into(client.1)
        .unwrap();
    oauth2
        .find_element(".modal-btn.authorize")
        .unwrap()
        .click()
        .unwrap();
    // Authorized, the dialog offers to log out; refused, it shows the issuer's error.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let oauth2 = oauth2_container(tab);
        if let Ok(errors) = oauth2.find_element(".errors") {
            panic!(
                "the token request failed: {}",
                errors.get_inner_text().unwrap()
            );
        }
        let button = oauth2.find_element(".modal-btn.authorize").unwrap();
        if button.get_inner_text().unwrap() == "Logout" {
            break;
        }
        assert!(Instant::now() < deadline, "never authorized");
        std::thread::sleep(Duration::from_millis(100));
    }
    tab.find_element(".btn-done").unwrap().click().unwrap();

    if tab
        .find_element(&format!("{ADMIN_OPERATION} .try-out__btn"))
        .is_err()
    {
        tab.find_element(&format!("{ADMIN_OPERATION} .opblock-summary-control"))
            .unwrap()
            .click()
            .unwrap();
        tab.wait_for_element(&format!("{ADMIN_OPERATION} .try-out__btn"))
            .unwrap()
            .click()
            .unwrap();
    }
    // Clear the previous answer, so what is read is this call's.
    if let Ok(clear) = tab.find_element(&format!("{ADMIN_OPERATION} .btn-clear")) {
        clear.click().unwrap();
    }
    tab.wait_for_element(&format!("{ADMIN_OPERATION} .execute"))
        .unwrap()
        .click()
        .unwrap();
    let answer = format!("{ADMIN_OPERATION} .live-responses-table");
    let status = tab
        .wait_for_element(&format!("{answer} tr.response .response-col_status"))
        .unwrap()
        .get_inner_text()
        .unwrap();
    let body = tab
        .wait_for_element(&format!(
            "{answer} tr.response .response-col_description pre"
        ))
        .unwrap()
        .get_inner_text()
        .unwrap();
    (status.trim().to_owned(), body)
}

/// Logs the OAuth 2.0 scheme out in the dialog, as a reader switching clients does.
fn log_out(tab: &Tab) {
    tab.wait_for_element(".auth-wrapper .authorize")
        .unwrap()
        .click()
        .unwrap();
    oauth2_container(tab)
        .find_element(".modal-btn.authorize")
        .unwrap()
        .click()
        .unwrap();
    oauth2_container(tab)
        .wait_for_element("#client_id_clientCredentials")
        .unwrap();
    tab.find_element(".btn-done").unwrap().click().unwrap();
}

#[test]
fn authorize_with_the_development_clients_then_try_the_admin_route_200_for_admin_403_for_user() {
    let run = make_run("browser-authorize");
    let browser = browser();
    let page = recorded_tab(&browser);
    page.tab.navigate_to(&format!("{}/docs", run.api)).unwrap();
    page.tab.wait_until_navigated().unwrap();
    page.tab.wait_for_element(ADMIN_OPERATION).unwrap();

    let (status, body) = authorize_and_try_admin(&page.tab, ADMIN_CLIENT);
    let shot = screenshot(&page.tab, "docs-admin-200");
    assert_eq!(status, "200", "{body} (screenshot: {})", shot.display());
    assert!(body.contains("This is an admin message."), "{body}");

    log_out(&page.tab);
    let (status, body) = authorize_and_try_admin(&page.tab, USER_CLIENT);
    let shot = screenshot(&page.tab, "docs-user-403");
    assert_eq!(status, "403", "{body} (screenshot: {})", shot.display());
    assert!(body.contains("\"message\""), "{body}");

    let requests = page.requests.lock().unwrap().clone();
    let tokens: Vec<&String> = requests
        .iter()
        .filter(|u| u.starts_with(&format!("{}/oauth/token", run.issuer)))
        .collect();
    assert!(
        tokens.len() >= 2,
        "both tokens came from the development issuer: {requests:?}"
    );
    let outside: Vec<&String> = requests
        .iter()
        .filter(|url| {
            !url.starts_with(&format!("{}/", run.api))
                && !url.starts_with(&format!("{}/", run.issuer))
                && !url.starts_with("data:")
        })
        .collect();
    assert!(
        outside.is_empty(),
        "requests outside the API and its issuer: {outside:?}"
    );
}

/// Serves `html` to every request on a free loopback port, from a thread: the stand-in for the
/// SPA at `http://localhost:4040`. Returns its origin.
fn serve_page(html: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0_u8; 4096];
            let _ = stream.read(&mut head);
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                html.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    origin
}

/// A page that calls the API from the browser as the SPA does, and shows what it could read.
fn spa_page(api: &str, user_token: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>SPA stand-in</title></head>
<body><h1>What this origin can read from the API</h1><pre id="results">calling…</pre>
<script>
const api = "{api}";
async function call(path, token) {{
  try {{
    const answer = await fetch(api + path, token ? {{ headers: {{ Authorization: "Bearer " + token }} }} : {{}});
    return {{ status: answer.status, body: await answer.json() }};
  }} catch (e) {{
    return {{ error: String(e) }};
  }}
}}
(async () => {{
  const results = {{
    public: await call("/api/messages/public"),
    protected: await call("/api/messages/protected", "{user_token}"),
    admin: await call("/api/messages/admin", "{user_token}"),
  }};
  document.getElementById("results").textContent = JSON.stringify(results, null, 2);
  window.results = JSON.stringify(results);
}})();
</script></body></html>"#
    )
}

#[test]
fn only_the_configured_spa_origin_can_read_answers_the_403_message_included() {
    let issuer = Issuer::new(key(0));
    let issuer_url = serve_issuer(&issuer);
    let user_token = issuer
        .sign(&test_support::user_claims(&issuer_url))
        .unwrap();
    let api_port = free_port();
    let api = format!("http://127.0.0.1:{api_port}");
    let page = spa_page(&api, &user_token);
    let allowed = serve_page(page.clone());
    let other = serve_page(page);

    let dir = empty_dir("browser-cors");
    let env = [
        ("AUTH0_ISSUER", issuer_url.as_str()),
        ("AUTH0_AUDIENCE", test_support::AUDIENCE),
        ("CLIENT_ORIGIN_URL", allowed.as_str()),
        ("APP__SERVER__WORKERS", "1"),
    ];
    let _server = BINARY.start(&dir, &env, api_port);

    let browser = browser();
    let read = |origin: &str, name: &str| -> Value {
        let tab = browser.new_tab().unwrap();
        tab.set_default_timeout(PATIENCE);
        tab.navigate_to(&format!("{origin}/")).unwrap();
        tab.wait_until_navigated().unwrap();
        let results = wait_for_text(&tab, "window.results");
        screenshot(&tab, name);
        serde_json::from_str(&results).unwrap()
    };

    let results = read(&allowed, "cors-allowed-origin");
    assert_eq!(results["public"]["status"], 200, "{results}");
    assert_eq!(
        results["public"]["body"]["text"],
        "This is a public message."
    );
    assert_eq!(results["protected"]["status"], 200, "{results}");
    assert_eq!(
        results["protected"]["body"]["text"],
        "This is a protected message."
    );
    assert_eq!(results["admin"]["status"], 403, "{results}");
    assert!(
        results["admin"]["body"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "the SPA can show why: {results}"
    );

    let results = read(&other, "cors-other-origin");
    for route in ["public", "protected", "admin"] {
        assert!(
            results[route]["error"]
                .as_str()
                .is_some_and(|e| e.contains("Failed to fetch")),
            "{route} from another origin: {results}"
        );
        assert!(results[route].get("status").is_none(), "{results}");
    }
}

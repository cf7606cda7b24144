//! The server binary: read `.env`, load settings, start logging, serve.
//!
//! `hello-world-api` serves the API (and, in a local run with no issuer configured, the
//! development issuer). `hello-world-api token [CLIENT_ID]` prints an access token from the
//! running development issuer, for the first configured client unless one is named.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use hello_world_api::issuer::{request_token, start_dev_issuer};
use hello_world_api::settings::{self, Settings};
use hello_world_api::startup::Application;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => Command::Serve,
        ["token"] => Command::Token(None),
        ["token", client] => Command::Token(Some((*client).to_owned())),
        _ => {
            eprintln!("usage: hello-world-api [token [CLIENT_ID]]");
            return ExitCode::from(2);
        }
    };

    // Variables already in the process win over `.env`, as dotenv tools do.
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("configuration error: .env: {error}");
        return ExitCode::from(2);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let settings = match settings::load(&config_dir(&env), &env) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return ExitCode::from(2);
        }
    };

    let outcome = actix_web::rt::System::new().block_on(async move {
        match command {
            Command::Serve => serve(settings).await,
            Command::Token(client) => print_token(&settings, client.as_deref()).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

enum Command {
    Serve,
    Token(Option<String>),
}

async fn serve(settings: Settings) -> Result<(), String> {
    // The development issuer listens before the API, so the first key fetch finds it.
    let _dev_issuer = match &settings.dev_issuer {
        Some(dev) => Some(start_dev_issuer(dev).map_err(|e| e.to_string())?),
        None => None,
    };
    let app = Application::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    app.stop_on_signals();
    app.run_until_stopped()
        .await
        .map_err(|e| format!("server stopped: {e}"))
}

async fn print_token(settings: &Settings, client_id: Option<&str>) -> Result<(), String> {
    let Some(dev) = &settings.dev_issuer else {
        return Err(format!(
            "tokens come from {}, not from the development issuer (it runs only in a local run \
             without AUTH0_DOMAIN or AUTH0_ISSUER): get one from your tenant",
            settings.auth.issuer
        ));
    };
    let client = match client_id {
        None => dev.clients.first(),
        Some(id) => dev.clients.iter().find(|c| c.client_id == id),
    }
    .ok_or_else(|| {
        let known: Vec<&str> = dev.clients.iter().map(|c| c.client_id.as_str()).collect();
        format!(
            "no client {:?} in dev_issuer.clients (known: {})",
            client_id.unwrap_or_default(),
            known.join(", ")
        )
    })?;
    let token = request_token(dev, client).await?;
    println!("{}", token.access_token);
    Ok(())
}

/// `APP_CONFIG_DIR`, else `./config`, else the `config` folder this binary was built from.
fn config_dir(env: &HashMap<String, String>) -> PathBuf {
    if let Some(dir) = env.get("APP_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("config");
    if local.join("default.toml").is_file() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

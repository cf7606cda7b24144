//! The server binary: read `.env`, load settings, start logging, serve.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use hello_world_api::settings;
use hello_world_api::startup::Application;

fn main() -> ExitCode {
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
        let app = Application::build(settings)
            .await
            .map_err(|e| e.to_string())?;
        app.run_until_stopped()
            .await
            .map_err(|e| format!("server stopped: {e}"))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
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

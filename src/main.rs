//! The server binary: read `.env`, load settings, start logging, serve.
//!
//! `hello-world-api` serves the API (and, in a local run with no issuer configured, the
//! development issuer). `hello-world-api token [CLIENT_ID]` prints an access token from the
//! running development issuer, for the first configured client unless one is named.
//!
//! DPoP (RFC 9449), with the client key `.dev/dpop-client-key.pem` (created on first use):
//! `hello-world-api dpop [CLIENT_ID] [URL]` gets a token bound to the key and calls `URL`
//! (default: the admin route) with a fresh proof, printing the exchange;
//! `hello-world-api dpop-token [CLIENT_ID]` prints a bound token, and
//! `hello-world-api dpop-proof METHOD URL [TOKEN]` a proof, for curl.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use derive_more::{Display, Error, From};
use hello_world_api::auth::dpop::ClientKey;
use hello_world_api::issuer::dpop::{self, DpopClientError};
use hello_world_api::issuer::{
    IssuerError, TokenRequestError, bind_dev_issuer, request_token, start_dev_issuer,
    start_dev_issuer_on, token_url,
};
use hello_world_api::settings::{self, DevClient, DevIssuerSettings, Settings, SettingsError};
use hello_world_api::startup::{Application, StartupError};

/// Why the binary stopped with a failure.
#[derive(Debug, Display, Error, From)]
enum Failure {
    #[display(
        "{}\n(hello-world-api --help lists the commands and variables)",
        usage()
    )]
    Usage,
    #[display("configuration error: .env: {_0}")]
    DotEnv(dotenvy::Error),
    #[display("configuration error: {_0}")]
    Settings(SettingsError),
    #[display("error: {_0}")]
    DevIssuer(IssuerError),
    #[display("error: {_0}")]
    Startup(StartupError),
    #[display("error: server stopped: {_0}")]
    Serve(std::io::Error),
    #[display("error: {_0}")]
    Token(TokenRequestError),
    #[display("error: {_0}")]
    Dpop(DpopClientError),
    #[display(
        "error: tokens come from {_0}, not from the development issuer (it runs only in a local \
         run without AUTH0_DOMAIN or AUTH0_ISSUER): get one from your tenant"
    )]
    #[from(ignore)]
    NoDevIssuer(#[error(not(source))] String),
    #[display("error: no client {wanted:?} in dev_issuer.clients (known: {known})")]
    #[from(ignore)]
    UnknownClient {
        #[error(not(source))]
        wanted: String,
        #[error(not(source))]
        known: String,
    },
}

impl Failure {
    /// 2 for what the caller must fix before anything starts (usage, configuration), else 1.
    fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage | Failure::DotEnv(_) | Failure::Settings(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

enum Command {
    Serve,
    Token(Option<String>),
    Dpop(Option<String>, Option<String>),
    DpopToken(Option<String>),
    DpopProof(String, String, Option<String>),
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            failure.exit_code()
        }
    }
}

/// The first lines of the help: what an unknown argument is answered with too.
fn usage() -> String {
    format!(
        "hello-world-api {}: {}\n\nusage: hello-world-api [COMMAND]",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_DESCRIPTION")
    )
}

/// `--help`: the commands, and the variables with one line each.
fn help() -> String {
    let mut text = usage();
    text.push_str(HELP);
    text
}

const HELP: &str = "

commands:
  serve (the default)              serve the API on PORT (and, locally without an issuer, the
                                   development issuer on APP__DEV_ISSUER__PORT)
  token [CLIENT_ID]                print an access token from the running development issuer
  dpop [CLIENT_ID] [URL]           a DPoP-bound token from the development issuer, then GET URL
                                   (default: the admin route) with a fresh proof
  dpop-token [CLIENT_ID]           print a DPoP-bound token (key: .dev/dpop-client-key.pem)
  dpop-proof METHOD URL [TOKEN]    print a DPoP proof for a request, for curl
  --help, -h                       this text
  --version, -V                    the version

variables (also read from ./.env; variables already set win):
  APP_ENV                          profile: local (default) or production
  APP_CONFIG_DIR                   where default.toml and {profile}.toml are (default: ./config)
  PORT, HOST                       where to listen (6060, 127.0.0.1)
  CLIENT_ORIGIN_URL                the one browser origin allowed (http://localhost:4040)
  AUTH0_DOMAIN                     your tenant, e.g. example.us.auth0.com
  AUTH0_AUDIENCE, AUDIENCE         the API identifier tokens must carry
  AUTH0_ISSUER, ISSUER_BASE_URL    any OpenID Connect issuer, instead of a domain
  AUTH0_JWKS_URI                   the issuer's key set, instead of discovery
  APP__SECTION__KEY                any setting, e.g. APP__AUTH__DPOP=required (README: Configuration)
  RUST_LOG                         log level, e.g. info or debug,actix_server=info
";

fn run() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--help" | "-h" | "help"] => {
            print!("{}", help());
            return Ok(());
        }
        ["--version" | "-V"] => {
            println!("hello-world-api {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        [] | ["serve"] => Command::Serve,
        ["token"] => Command::Token(None),
        ["token", client] => Command::Token(Some((*client).to_owned())),
        ["dpop"] => Command::Dpop(None, None),
        ["dpop", one] if one.contains("://") => Command::Dpop(None, Some((*one).to_owned())),
        ["dpop", client] => Command::Dpop(Some((*client).to_owned()), None),
        ["dpop", client, url] => Command::Dpop(Some((*client).to_owned()), Some((*url).to_owned())),
        ["dpop-token"] => Command::DpopToken(None),
        ["dpop-token", client] => Command::DpopToken(Some((*client).to_owned())),
        ["dpop-proof", method, url] => {
            Command::DpopProof((*method).to_owned(), (*url).to_owned(), None)
        }
        ["dpop-proof", method, url, token] => Command::DpopProof(
            (*method).to_owned(),
            (*url).to_owned(),
            Some((*token).to_owned()),
        ),
        _ => return Err(Failure::Usage),
    };

    // `.env` of the working directory only: never one from a parent directory, which someone
    // else may control (a stray /tmp/.env must not choose the issuer we trust). Variables
    // already in the process win over it, as dotenv tools do.
    if let Err(error) = dotenvy::from_path(".env")
        && !error.not_found()
    {
        return Err(Failure::DotEnv(error));
    }
    // actix-server's own lines (workers starting and stopping, one per listener) are below
    // the default level: RUST_LOG=info,actix_server=info shows them.
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,actix_server=warn"),
    )
    .init();

    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let mut settings = settings::load(&config_dir(&env), &env)?;
    for warning in &settings.warnings {
        log::warn!("configuration: {warning}");
    }
    // APP__DEV_ISSUER__PORT=0: bind a free port now, and settle the settings with it (its
    // issuer URL and key set URL depend on it).
    let mut dev_listener = None;
    if matches!(command, Command::Serve)
        && let Some(dev) = settings.dev_issuer.as_ref().filter(|d| d.port == 0)
    {
        let listener = bind_dev_issuer(dev.port)?;
        let port = listener.local_addr().map_err(Failure::Serve)?.port();
        let mut env = env.clone();
        env.insert("APP__DEV_ISSUER__PORT".to_owned(), port.to_string());
        settings = settings::load(&config_dir(&env), &env)?;
        dev_listener = Some(listener);
    }

    actix_web::rt::System::new().block_on(async move {
        match command {
            Command::Serve => serve(settings, dev_listener).await,
            Command::Token(client) => print_token(&settings, client.as_deref()).await,
            Command::Dpop(client, url) => {
                dpop_call(&settings, client.as_deref(), url.as_deref()).await
            }
            Command::DpopToken(client) => {
                let (dev, client) = dev_client(&settings, client.as_deref())?;
                let key = client_key()?;
                let token = dpop::bound_token(dev, client, &key).await?;
                println!("{}", token.access_token);
                Ok(())
            }
            Command::DpopProof(method, url, token) => {
                let key = client_key()?;
                let proof = key
                    .proof(&method, &url, token.as_deref(), None, dpop::unix_now())
                    .map_err(|source| DpopClientError::Key {
                        path: dpop::CLIENT_KEY_FILE.to_owned(),
                        source,
                    })?;
                println!("{proof}");
                Ok(())
            }
        }
    })
}

async fn serve(settings: Settings, dev_listener: Option<TcpListener>) -> Result<(), Failure> {
    // The development issuer listens before the API, so the first key fetch finds it.
    let _dev_issuer = match (&settings.dev_issuer, dev_listener) {
        (Some(dev), Some(listener)) => Some(start_dev_issuer_on(dev, listener)?),
        (Some(dev), None) => Some(start_dev_issuer(dev)?),
        (None, _) => None,
    };
    let app = Application::build(settings).await?;
    app.stop_on_signals();
    app.run_until_stopped().await.map_err(Failure::Serve)
}

async fn print_token(settings: &Settings, client_id: Option<&str>) -> Result<(), Failure> {
    let (dev, client) = dev_client(settings, client_id)?;
    let token = request_token(dev, client).await?;
    println!("{}", token.access_token);
    Ok(())
}

/// The development issuer's settings and the client named (else its first one).
fn dev_client<'s>(
    settings: &'s Settings,
    client_id: Option<&str>,
) -> Result<(&'s DevIssuerSettings, &'s DevClient), Failure> {
    let Some(dev) = &settings.dev_issuer else {
        let issuers: Vec<&str> = settings
            .auth
            .issuers
            .iter()
            .map(|i| i.issuer.as_str())
            .collect();
        return Err(Failure::NoDevIssuer(issuers.join(", ")));
    };
    let client = match client_id {
        None => dev.clients.first(),
        Some(id) => dev.clients.iter().find(|c| c.client_id == id),
    }
    .ok_or_else(|| Failure::UnknownClient {
        wanted: client_id.unwrap_or_default().to_owned(),
        known: dev
            .clients
            .iter()
            .map(|c| c.client_id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    Ok((dev, client))
}

fn client_key() -> Result<ClientKey, Failure> {
    Ok(dpop::load_or_create_client_key(Path::new(
        dpop::CLIENT_KEY_FILE,
    ))?)
}

/// `hello-world-api dpop`: a bound token, then a call with a fresh proof, as it goes.
async fn dpop_call(
    settings: &Settings,
    client_id: Option<&str>,
    url: Option<&str>,
) -> Result<(), Failure> {
    let (dev, client) = dev_client(settings, client_id)?;
    let url = url.map_or_else(
        || {
            format!(
                "http://localhost:{}/api/messages/admin",
                settings.server.port
            )
        },
        str::to_owned,
    );
    let key = client_key()?;
    println!(
        "client key {} (thumbprint {})",
        dpop::CLIENT_KEY_FILE,
        key.thumbprint()
    );
    let token = dpop::bound_token(dev, client, &key).await?;
    println!(
        "POST {} with a DPoP proof as {}: token_type {}, bound to the key (cnf.jkt)",
        token_url(dev),
        client.client_id,
        token.token_type
    );
    let exchange = dpop::call(&url, &token.access_token, &key).await?;
    if let Some(nonce) = &exchange.nonce {
        println!("GET {url}: 401 use_dpop_nonce; again with the nonce {nonce}");
    }
    println!(
        "GET {url} with Authorization: DPoP <token> and a fresh DPoP proof: {}",
        exchange.status
    );
    println!("{}", exchange.body);
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

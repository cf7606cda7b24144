//! The bare actix-web 4 baseline of `make bench`: one JSON hello handler, no middleware, no
//! logging, no app data; what the API's routes are measured against in the same run.
//!
//! `bare-actix [--port N] [--workers N] [--header NAME:VALUE]...`, or the `PORT` and `WORKERS`
//! variables. Defaults: port 8080, one worker per core. Serves `GET /hello` with a body the size
//! of the API's public answer (the same text), serialized the same way (`web::Json` of a
//! struct). Each `--header` is added to every answer with actix-web's `DefaultHeaders` (the
//! bench passes the API's own response headers, to tell what sending them costs); without
//! one, no middleware at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use serde::Serialize;

#[derive(Serialize)]
struct Message {
    text: &'static str,
}

async fn hello() -> web::Json<Message> {
    web::Json(Message {
        text: "This is a public message.",
    })
}

/// `--name N` from the arguments, else the variable `var`, else `default`.
fn setting(args: &[String], name: &str, var: &str, default: usize) -> usize {
    let text = args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(var).ok());
    match text {
        Some(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name} / {var}: not a number: {text:?}")),
        None => default,
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = u16::try_from(setting(&args, "--port", "PORT", 8080)).expect("port: 0 to 65535");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = match setting(&args, "--workers", "WORKERS", 0) {
        0 => cores,
        n => n,
    };
    let headers: Vec<(String, String)> = args
        .windows(2)
        .filter(|pair| pair[0] == "--header")
        .map(|pair| {
            let (name, value) = pair[1].split_once(':').expect("--header NAME:VALUE");
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    actix_web::rt::System::new().block_on(async move {
        if headers.is_empty() {
            HttpServer::new(|| App::new().route("/hello", web::get().to(hello)))
                .workers(workers)
                .bind(("127.0.0.1", port))?
                .run()
                .await
        } else {
            HttpServer::new(move || {
                let added = headers
                    .iter()
                    .fold(DefaultHeaders::new(), |added, (name, value)| {
                        added.add((name.as_str(), value.as_str()))
                    });
                App::new().wrap(added).route("/hello", web::get().to(hello))
            })
            .workers(workers)
            .bind(("127.0.0.1", port))?
            .run()
            .await
        }
    })
}

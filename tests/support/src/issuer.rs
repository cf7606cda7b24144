//! Token issuers on port 0: in the test's own runtime, or on a thread of their own.

use std::net::TcpListener;

use hello_world_api::issuer::{Issuer, Layout};

/// Serves `issuer` on a free loopback port from the current actix runtime; returns its URL
/// (`http://127.0.0.1:PORT/`). It stops with the runtime, that is with the test.
pub fn spawn_issuer(issuer: &Issuer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind issuer");
    let url = format!("http://{}/", listener.local_addr().expect("issuer addr"));
    issuer.serve(listener).expect("serve issuer");
    url
}

/// Serves `issuer` on a free loopback port from the current actix runtime, publishing its
/// metadata and keys as `layout` says; returns its issuer URL exactly as its metadata states
/// it (`http://127.0.0.1:PORT` + the layout's path + `/` when it has a trailing slash). It
/// stops with the runtime, that is with the test.
pub fn spawn_issuer_at(issuer: &Issuer, layout: Layout) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind issuer");
    let authority = listener.local_addr().expect("issuer addr").to_string();
    let url = layout.issuer_url(&authority);
    issuer.set_layout(layout);
    issuer.serve(listener).expect("serve issuer");
    url
}

/// Serves `issuer` on a free loopback port from a thread of its own; returns its URL. For
/// tests without a runtime (the soak, the load benchmark), where this thread steers the issuer.
pub fn serve_issuer(issuer: &Issuer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let serving = issuer.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let _handle = serving.serve(listener).unwrap();
            std::future::pending::<()>().await;
        });
    });
    url
}

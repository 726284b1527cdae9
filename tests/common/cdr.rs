//! A CDR receiver for the black-box tests: axum on 127.0.0.1:0 keeping every POSTed body.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A CDR receiver on 127.0.0.1:0 in its own thread; returns its URL and what it got.
pub fn cdr_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    cdr_receiver_refusing_until(Instant::now())
}

/// A CDR receiver that answers 404 (and keeps nothing) until `until`, then 200 (a wrong
/// path behind a proxy, say, that gets fixed).
pub fn cdr_receiver_refusing_until(until: Instant) -> (String, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = Router::new().route(
        "/cdr",
        post(move |body: String| {
            let sink = sink.clone();
            async move {
                if Instant::now() < until {
                    return (StatusCode::NOT_FOUND, "not yet");
                }
                sink.lock().expect("lock").push(body);
                (StatusCode::OK, "ok")
            }
        }),
    );
    (serve(app), got)
}

/// Serves `app` on 127.0.0.1:0 in its own thread and runtime; returns `http://ADDR/cdr`.
pub fn serve(app: Router) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr"))
                .expect("send addr");
            let _ = axum::serve(listener, app).await;
        });
    });
    let addr = rx.recv().expect("receiver address");
    format!("http://{addr}/cdr")
}

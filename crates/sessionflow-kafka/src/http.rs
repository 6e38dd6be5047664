//! `/metrics`, `/healthz` and `/readyz` on one port: plain HTTP on
//! loopback by default; TLS and a bearer token or basic auth when it must
//! listen beyond the host; always bounded, so that no client can exhaust
//! the daemon through it.

use crate::health::Shared;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

/// Who may read `/metrics`. The health endpoints stay open: probes need
/// them and they tell nothing but up/ready and, when stalled, which call.
#[derive(Clone, PartialEq, Eq)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic <base64(user:password)>`.
    Basic { user: String, password: String },
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            HttpAuth::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, password: <redacted> }}"),
        }
    }
}

impl HttpAuth {
    /// The `Authorization` header value a client must send.
    fn expected_header(&self) -> String {
        match self {
            HttpAuth::Bearer(token) => format!("Bearer {token}"),
            HttpAuth::Basic { user, password } => format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))),
        }
    }
}

/// PEM files of the endpoint's TLS certificate (chain) and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How the endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    pub auth: Option<HttpAuth>,
    pub tls: Option<TlsFiles>,
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Bound on a TLS handshake and on reading a request's headers; a
    /// connection is closed after this long idle.
    pub request_timeout: Duration,
}

/// Connections served at once unless configured (`metrics.max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 32;
/// The handshake and header bound unless configured (`metrics.request_timeout_ms`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl HttpSettings {
    /// Plain HTTP, no auth, the default bounds.
    pub fn plain(addr: SocketAddr) -> HttpSettings {
        HttpSettings { addr, auth: None, tls: None, max_connections: DEFAULT_MAX_CONNECTIONS, request_timeout: DEFAULT_REQUEST_TIMEOUT }
    }
}

/// A connection's whole life is bounded too: Prometheus reconnects at its
/// next scrape, and an idle keep-alive cannot hold a slot for long.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], shared.metrics.render())
}

/// Up, and the processing loop not stalled (`kafka.stall_timeout_ms`).
async fn healthz(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    match shared.stalled() {
        None => (StatusCode::OK, "ok\n".to_owned()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("stalled: {why}\n")),
    }
}

async fn readyz(State(shared): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    if shared.ready.load(Ordering::SeqCst) { (StatusCode::OK, "ready\n") } else { (StatusCode::SERVICE_UNAVAILABLE, "restoring or not yet assigned\n") }
}

async fn authorize(State(expected): State<Arc<String>>, request: Request, next: Next) -> Response {
    let given = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes()).unwrap_or_default();
    if bool::from(given.ct_eq(expected.as_bytes())) {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer, Basic realm=\"sessionflow\"")], "unauthorized\n").into_response()
    }
}

fn router(settings: &HttpSettings, shared: Arc<Shared>) -> Router {
    let mut metrics_route = Router::new().route("/metrics", get(metrics));
    if let Some(auth) = &settings.auth {
        metrics_route = metrics_route.route_layer(middleware::from_fn_with_state(Arc::new(auth.expected_header()), authorize));
    }
    metrics_route.route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(shared)
}

/// The TLS acceptor of `files`: modern protocol versions only.
pub fn tls_acceptor(files: &TlsFiles) -> anyhow::Result<SslAcceptor> {
    use anyhow::Context as _;
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    builder.set_certificate_chain_file(&files.cert).with_context(|| format!("reading the certificate {}", files.cert.display()))?;
    builder.set_private_key_file(&files.key, SslFiletype::PEM).with_context(|| format!("reading the private key {}", files.key.display()))?;
    builder.check_private_key().context("the TLS private key does not match the certificate")?;
    Ok(builder.build())
}

/// Serves until the future is dropped. Errors only when it cannot start
/// (bind, TLS files); a failing connection is logged and dropped.
pub async fn serve(settings: HttpSettings, shared: Arc<Shared>) -> anyhow::Result<()> {
    let tls = settings.tls.as_ref().map(tls_acceptor).transpose()?.map(Arc::new);
    let app = router(&settings, shared);
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    tracing::info!(addr = %settings.addr, tls = tls.is_some(), auth = settings.auth.is_some(), "serving /metrics, /healthz, /readyz");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, typically: wait rather than spin.
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics endpoint: connection limit reached, closing");
            drop(stream);
            continue;
        };
        let (app, tls, timeout) = (app.clone(), tls.clone(), settings.request_timeout);
        tokio::spawn(async move {
            let _slot = slot;
            let served = async {
                match tls {
                    None => serve_connection(stream, app, timeout).await,
                    Some(acceptor) => {
                        let ssl = Ssl::new(acceptor.context())?;
                        let mut stream = tokio_openssl::SslStream::new(ssl, stream)?;
                        tokio::time::timeout(timeout, Pin::new(&mut stream).accept()).await??;
                        serve_connection(stream, app, timeout).await
                    }
                }
            };
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_LIFETIME, served).await {
                tracing::debug!(%peer, error = %e, "metrics endpoint: connection failed");
            }
        });
    }
}

async fn serve_connection<S>(stream: S, app: Router, timeout: Duration) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

//! The metrics endpoint when it must listen beyond the host: `/metrics`
//! behind a bearer token or basic auth (the health endpoints open for
//! probes), HTTPS with a certificate a client verifies, and bounds no
//! client can get around: a connection limit, and idle or slow connections
//! closed after `request_timeout`.

use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509NameBuilder};
use sessionflow_kafka::Shared;
use sessionflow_kafka::http::{HttpAuth, HttpSettings, TlsFiles, serve};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Runs the endpoint on a runtime of its own until the test ends.
fn start(settings: HttpSettings) -> tokio::runtime::Runtime {
    let addr = settings.addr;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.spawn(async move { serve(settings, Arc::new(Shared::default())).await.unwrap() });
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the endpoint never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime
}

/// One request on `stream`; the status code and the body.
fn request(stream: &mut impl ReadWrite, path: &str, authorization: Option<&str>) -> (u16, String) {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n").as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn get(addr: SocketAddr, path: &str, authorization: Option<&str>) -> (u16, String) {
    request(&mut TcpStream::connect(addr).unwrap(), path, authorization)
}

#[test]
fn metrics_need_the_token_and_probes_do_not() {
    let addr = free_addr();
    let _endpoint = start(HttpSettings { auth: Some(HttpAuth::Bearer("t0ken-for-metrics".into())), ..HttpSettings::plain(addr) });
    assert_eq!(get(addr, "/metrics", None).0, 401);
    assert_eq!(get(addr, "/metrics", Some("Bearer wrong-token")).0, 401);
    assert_eq!(get(addr, "/metrics", Some("Bearer t0ken-for-metrics-and-more")).0, 401);
    let (status, body) = get(addr, "/metrics", Some("Bearer t0ken-for-metrics"));
    assert_eq!(status, 200);
    assert!(body.contains("sessionflow_"), "{body}");
    assert_eq!(get(addr, "/healthz", None).0, 200);
    assert_eq!(get(addr, "/readyz", None).0, 503, "not ready: nothing assigned");
}

#[test]
fn basic_auth_takes_the_user_and_the_password() {
    let addr = free_addr();
    let _endpoint = start(HttpSettings { auth: Some(HttpAuth::Basic { user: "prometheus".into(), password: "pa55word".into() }), ..HttpSettings::plain(addr) });
    // base64("prometheus:pa55word") and base64("prometheus:wrong")
    assert_eq!(get(addr, "/metrics", Some("Basic cHJvbWV0aGV1czpwYTU1d29yZA==")).0, 200);
    assert_eq!(get(addr, "/metrics", Some("Basic cHJvbWV0aGV1czp3cm9uZw==")).0, 401);
    assert_eq!(get(addr, "/metrics", None).0, 401);
}

/// A self-signed certificate for 127.0.0.1 and localhost, as PEM files.
fn certificate(dir: &Path) -> TlsFiles {
    let key = PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
    let san = SubjectAlternativeName::new().dns("localhost").ip("127.0.0.1").build(&cert.x509v3_context(None, None)).unwrap();
    cert.append_extension(san).unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let files = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    std::fs::write(&files.cert, cert.build().to_pem().unwrap()).unwrap();
    std::fs::write(&files.key, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    files
}

#[test]
fn https_with_a_certificate_the_client_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let files = certificate(dir.path());
    let addr = free_addr();
    let _endpoint = start(HttpSettings { tls: Some(files.clone()), auth: Some(HttpAuth::Bearer("tls-token".into())), ..HttpSettings::plain(addr) });

    let mut verifying = SslConnector::builder(SslMethod::tls_client()).unwrap();
    verifying.set_ca_file(&files.cert).unwrap();
    verifying.set_verify(SslVerifyMode::PEER);
    let connector = verifying.build();
    let mut tls = connector.connect("localhost", TcpStream::connect(addr).unwrap()).expect("the handshake verifies the certificate");
    let (status, body) = request(&mut tls, "/metrics", Some("Bearer tls-token"));
    assert_eq!(status, 200);
    assert!(body.contains("sessionflow_"), "{body}");

    // A client that does not trust the certificate fails the handshake.
    let default_trust = SslConnector::builder(SslMethod::tls_client()).unwrap().build();
    assert!(default_trust.connect("localhost", TcpStream::connect(addr).unwrap()).is_err(), "an unknown certificate was accepted");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    plain.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "plain HTTP was answered on the TLS port");
}

#[test]
fn connections_are_bounded_and_idle_or_slow_ones_closed() {
    let addr = free_addr();
    let timeout = Duration::from_millis(500);
    let _endpoint = start(HttpSettings { max_connections: 2, request_timeout: timeout, ..HttpSettings::plain(addr) });
    // `start`'s probe holds a slot until the endpoint notices it is gone.
    std::thread::sleep(timeout * 2);

    // Two clients hold every slot: one silent, one sending its headers a
    // byte at a time.
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // A third is closed at once, unanswered.
    let mut third = TcpStream::connect(addr).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    let asked = Instant::now();
    let _ = third.read_to_end(&mut answer);
    assert!(answer.is_empty(), "a connection past the limit was served after {:?}: {}", asked.elapsed(), String::from_utf8_lossy(&answer));

    // Both holders are closed after the timeout, and the endpoint serves again.
    let started = Instant::now();
    for holder in [&mut silent, &mut slow] {
        holder.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        let _ = holder.read_to_end(&mut rest);
        assert!(!rest.starts_with(b"HTTP/1.1 200"), "an incomplete request was answered");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "idle connections held for {:?}", started.elapsed());
    assert_eq!(get(addr, "/healthz", None).0, 200);
}

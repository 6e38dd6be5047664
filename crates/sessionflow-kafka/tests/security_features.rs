//! The librdkafka sessionflow builds can use every SASL mechanism and the
//! TLS a managed Kafka service asks for: librdkafka refuses, at client
//! creation, a mechanism it was built without ("recompile librdkafka
//! with …"). No broker is contacted.

use rdkafka::ClientConfig;
use rdkafka::producer::BaseProducer;

fn creates(properties: &[(&str, &str)]) -> Result<(), String> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", "127.0.0.1:1");
    for (k, v) in properties {
        config.set(*k, *v);
    }
    config.create::<BaseProducer>().map(drop).map_err(|e| e.to_string())
}

#[test]
fn kerberos_oauthbearer_oidc_scram_and_tls_are_built_in() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        // librdkafka names what a build must have: creation fails on what it lacks.
        ("the built-in features", &[("builtin.features", "ssl,sasl,sasl_gssapi,sasl_plain,sasl_scram,sasl_oauthbearer,oidc,zstd")]),
        (
            "SASL/GSSAPI (Kerberos)",
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "GSSAPI"),
                ("sasl.kerberos.service.name", "kafka"),
                ("sasl.kerberos.principal", "sessionflow@EXAMPLE.COM"),
                ("sasl.kerberos.kinit.cmd", "true"),
            ],
        ),
        (
            "SASL/OAUTHBEARER with OIDC",
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "OAUTHBEARER"),
                ("sasl.oauthbearer.method", "oidc"),
                ("sasl.oauthbearer.client.id", "sessionflow"),
                ("sasl.oauthbearer.client.secret", "s3cret"),
                ("sasl.oauthbearer.token.endpoint.url", "https://127.0.0.1:1/token"),
            ],
        ),
        ("SASL/SCRAM-SHA-512", &[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-512"), ("sasl.username", "u"), ("sasl.password", "p")]),
        ("SASL/PLAIN", &[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN"), ("sasl.username", "u"), ("sasl.password", "p")]),
    ];
    for (what, properties) in cases {
        creates(properties).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    // The check can fail: a feature or a mechanism no librdkafka has.
    assert!(creates(&[("builtin.features", "no_such_feature")]).is_err());
    assert!(creates(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "NO-SUCH-MECHANISM")]).is_err());
}

//! `wss://`: a server with a certificate (signed by a test CA made here), and a
//! client that trusts that CA through `SSL_CERT_FILE`. Its own test binary: the
//! environment variable is set before any thread starts.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use beckon::protocol::Push;
use beckon::{ClientConfig, ErrorCode, Event};

mod common;
use common::{block, unique, Peer, ServerProcess};

#[test]
fn invitations_over_wss_and_untrusted_certificates_are_refused() {
    let dir = std::env::temp_dir().join(format!("beckon-tls-{}", common::rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();

    let (cert, key, ca_file) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    );
    std::fs::write(&cert, server_cert.pem()).unwrap();
    std::fs::write(&key, server_key.serialize_pem()).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let server = ServerProcess::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let url = format!("wss://127.0.0.1:{}", server.port);

    // Trusting another CA only, the certificate is refused: NETWORK.
    let other_key = KeyPair::generate().unwrap();
    let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other = other_params.self_signed(&other_key).unwrap();
    std::fs::write(dir.join("other.pem"), other.pem()).unwrap();
    std::env::set_var("SSL_CERT_FILE", dir.join("other.pem"));
    let mut config = ClientConfig::new(&url);
    config.request_timeout = std::time::Duration::from_secs(5);
    let stranger = Peer::with_config(config, &unique("eve"));
    let refused = block(stranger.client.login(unique("eve"), "t")).unwrap_err();
    assert_eq!(refused.code, ErrorCode::Network, "{refused}");
    assert!(refused.message.contains("certificate"), "{refused}");

    std::env::set_var("SSL_CERT_FILE", &ca_file);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&url, &alice);
    let b = Peer::online(&url, &bob);
    let id = a.invite(&[&bob], 30).invitation_id;
    assert_eq!(b.ringing(), id);
    block(b.client.accept_invitation(beckon::protocol::Answer {
        invitation_id: id.clone(),
        extended_data: "".into(),
    }))
    .unwrap();
    a.expect("INVITATION_ACCEPTED", |e| match e {
        Event::Invitation(Push::InvitationAccepted { invitation_id, .. }) => {
            (invitation_id == &id).then_some(())
        }
        _ => None,
    });
    // A plain ws:// client cannot talk to the TLS port.
    let plain = Peer::new(&format!("ws://127.0.0.1:{}", server.port), &unique("carl"));
    let mismatch = block(plain.client.login(unique("carl"), "t")).unwrap_err();
    assert!(
        matches!(
            mismatch.code,
            ErrorCode::Network | ErrorCode::RequestTimeout
        ),
        "{mismatch}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

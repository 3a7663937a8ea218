//! Compact JWTs signed with `ring`: ES256 for APNs provider tokens, RS256
//! for the Google service account's OAuth assertion.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

/// The PKCS#8 DER inside a PEM `PRIVATE KEY` block.
pub fn pkcs8_from_pem(pem: &[u8]) -> Result<Vec<u8>, String> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(PrivateKeyDer::Pkcs8(der)) => Ok(der.secret_pkcs8_der().to_vec()),
        Ok(_) => Err("not a PKCS#8 key (expected -----BEGIN PRIVATE KEY-----)".to_owned()),
        Err(e) => Err(format!("no PEM private key: {e}")),
    }
}

pub fn es256_key(pkcs8: &[u8]) -> Result<EcdsaKeyPair, String> {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|e| format!("not an EC P-256 key: {e}"))
}

pub fn rs256_key(pkcs8: &[u8]) -> Result<RsaKeyPair, String> {
    RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| format!("not an RSA key: {e}"))
}

fn signing_input(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

pub fn sign_es256(
    key: &EcdsaKeyPair,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> Result<String, String> {
    let input = signing_input(header, claims);
    let signature = key
        .sign(&SystemRandom::new(), input.as_bytes())
        .map_err(|e| format!("ES256: {e}"))?;
    Ok(format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}

pub fn sign_rs256(
    key: &RsaKeyPair,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> Result<String, String> {
    let input = signing_input(header, claims);
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .map_err(|e| format!("RS256: {e}"))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(&signature)))
}

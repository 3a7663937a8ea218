//! The server API's bearer keys: what each may do and for which users.
//! Keys are kept only as SHA-256 digests, and a presented key is compared
//! with every configured one in constant time (digests of equal length, no
//! early exit), so neither the answer's timing nor a memory dump gives a key
//! away.

use ring::digest::{digest, SHA256};

use crate::config::ApiKeyConfig;

/// A key shorter than this is refused at start.
pub const MIN_KEY_LEN: usize = 32;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Send,
    Read,
    Cancel,
    Devices,
    Kick,
    Tokens,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Send,
        Action::Read,
        Action::Cancel,
        Action::Devices,
        Action::Kick,
        Action::Tokens,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Read => "read",
            Action::Cancel => "cancel",
            Action::Devices => "devices",
            Action::Kick => "kick",
            Action::Tokens => "tokens",
        }
    }
}

/// One configured key.
pub struct Key {
    pub name: String,
    digest: [u8; 32],
    allowed: Vec<Action>,
    /// None: every user.
    users: Option<Vec<UserPattern>>,
}

enum UserPattern {
    Exactly(String),
    Prefix(String),
}

impl Key {
    pub fn may(&self, action: Action) -> bool {
        self.allowed.contains(&action)
    }

    /// Whether the key may act for `user`.
    pub fn covers(&self, user: &str) -> bool {
        match &self.users {
            None => true,
            Some(patterns) => patterns.iter().any(|p| match p {
                UserPattern::Exactly(id) => id == user,
                UserPattern::Prefix(prefix) => user.starts_with(prefix.as_str()),
            }),
        }
    }
}

/// Every key of `[[api.key]]`.
pub struct Keys(Vec<Key>);

impl Keys {
    /// Reads the keys (their files too); a message naming the key's setting
    /// otherwise, never the key.
    pub fn load(configs: &[ApiKeyConfig]) -> Result<Keys, String> {
        if configs.is_empty() {
            return Err("api: listen is set but no [[api.key]] is configured".to_owned());
        }
        let mut keys: Vec<Key> = Vec::new();
        for (index, config) in configs.iter().enumerate() {
            let section = format!("api.key[{index}]");
            if config.name.is_empty() || keys.iter().any(|k| k.name == config.name) {
                return Err(format!(
                    "{section}.name: '{}' is empty or taken by another key",
                    config.name
                ));
            }
            let secret = match (&config.secret, &config.secret_file) {
                (Some(_), Some(_)) => {
                    return Err(format!("{section}: give secret or secret_file, not both"))
                }
                (Some(secret), None) => secret.clone(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| format!("{section}.secret_file {}: {e}", path.display()))?
                    .trim()
                    .to_owned(),
                (None, None) => {
                    return Err(format!("{section}: a secret or secret_file is required"))
                }
            };
            if secret.len() < MIN_KEY_LEN || !secret.chars().all(|c| c.is_ascii_graphic()) {
                return Err(format!(
                    "{section}: a key is at least {MIN_KEY_LEN} printable ASCII characters, no spaces"
                ));
            }
            let allowed = match &config.allow {
                None => Action::ALL.to_vec(),
                Some(names) => names
                    .iter()
                    .map(|name| {
                        Action::ALL
                            .into_iter()
                            .find(|a| a.name() == name)
                            .ok_or_else(|| {
                                format!(
                                    "{section}.allow: '{name}' is not an action (send, read, cancel, devices, kick, tokens)"
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            };
            let users = match &config.users {
                None => None,
                Some(patterns) if patterns.is_empty() => {
                    return Err(format!(
                        "{section}.users: an empty list allows nobody (leave it out for every user)"
                    ))
                }
                Some(patterns) => Some(
                    patterns
                        .iter()
                        .map(|p| match p.strip_suffix('*') {
                            Some(prefix) if !prefix.contains('*') => {
                                Ok(UserPattern::Prefix(prefix.to_owned()))
                            }
                            None if !p.is_empty() => Ok(UserPattern::Exactly(p.clone())),
                            _ => Err(format!(
                                "{section}.users: '{p}' is neither a user id nor a prefix ending in *"
                            )),
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let digest = sha256(secret.as_bytes());
            if let Some(same) = keys.iter().find(|k| k.digest == digest) {
                return Err(format!(
                    "{section}: the same key as api.key '{}' (each key must be its own)",
                    same.name
                ));
            }
            keys.push(Key {
                name: config.name.clone(),
                digest,
                allowed,
                users,
            });
        }
        Ok(Keys(keys))
    }

    /// The key `presented` is, if any: every key is compared, each in
    /// constant time.
    pub fn find(&self, presented: &str) -> Option<&Key> {
        let wanted = sha256(presented.as_bytes());
        let mut found = None;
        for key in &self.0 {
            if equal_in_constant_time(&key.digest, &wanted) {
                found = Some(key);
            }
        }
        found
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// Whether `a` and `b` are equal, looking at every byte whatever the first
/// difference.
fn equal_in_constant_time(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Read through black_box, so the compiler cannot turn the fold into an
    // early exit.
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, secret: &str) -> ApiKeyConfig {
        ApiKeyConfig {
            name: name.to_owned(),
            secret: Some(secret.to_owned()),
            secret_file: None,
            allow: None,
            users: None,
        }
    }

    const A: &str = "a-key-of-at-least-thirty-two-chars-0001";
    const B: &str = "b-key-of-at-least-thirty-two-chars-0002";

    #[test]
    fn a_presented_key_is_found_among_several_and_scoped() {
        let mut scoped = config("support", B);
        scoped.allow = Some(vec!["send".into(), "read".into()]);
        scoped.users = Some(vec!["agent-*".into(), "alice".into()]);
        let keys = Keys::load(&[config("backend", A), scoped]).unwrap();
        assert_eq!(keys.find(A).map(|k| k.name.as_str()), Some("backend"));
        let support = keys.find(B).unwrap();
        assert!(support.may(Action::Send) && !support.may(Action::Kick));
        assert!(support.covers("agent-7") && support.covers("alice"));
        assert!(!support.covers("alicia") && !support.covers("bob"));
        assert!(keys.find("").is_none());
        assert!(keys.find(&A[..A.len() - 1]).is_none());
    }

    #[test]
    fn keys_that_cannot_be_used_are_refused_by_name_never_by_value() {
        let short = "too-short";
        let cases: Vec<(Vec<ApiKeyConfig>, &str)> = vec![
            (vec![], "no [[api.key]]"),
            (vec![config("k", short)], "api.key[0]: a key is at least 32"),
            (vec![config("k", A), config("k", B)], "api.key[1].name: 'k'"),
            (
                vec![config("one", A), config("two", A)],
                "api.key[1]: the same key as api.key 'one'",
            ),
            (
                vec![ApiKeyConfig {
                    allow: Some(vec!["everything".into()]),
                    ..config("k", A)
                }],
                "api.key[0].allow: 'everything' is not an action",
            ),
            (
                vec![ApiKeyConfig {
                    users: Some(vec!["a*b*".into()]),
                    ..config("k", A)
                }],
                "api.key[0].users: 'a*b*'",
            ),
        ];
        for (configs, expected) in cases {
            let message = Keys::load(&configs).err().unwrap();
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains(short) && !message.contains(A));
        }
    }
}

//! Push targets: where a device that is not connected can still be rung (APNs,
//! FCM, or the app's own backend through a webhook), and what the inviter
//! learns of each push (docs/PUSH.md).

use serde::{Deserialize, Serialize};

use super::Text;
use crate::error::{Error, Result};

/// The service a push target is reached through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushProvider {
    /// Apple Push Notification service, alert pushes (`apns-push-type: alert`).
    Apns,
    /// APNs VoIP pushes for PushKit and CallKit (`apns-push-type: voip`, topic
    /// `<bundle id>.voip`). Stop pushes to such a device go as alerts: iOS
    /// ends an app that gets a VoIP push without reporting a new call.
    ApnsVoip,
    /// Firebase Cloud Messaging HTTP v1: high-priority data messages.
    Fcm,
    /// A signed HTTP POST to the app's own backend, which pushes however it
    /// likes.
    Webhook,
}

impl PushProvider {
    /// cbindgen:ignore
    pub const ALL: [PushProvider; 4] = [
        PushProvider::Apns,
        PushProvider::ApnsVoip,
        PushProvider::Fcm,
        PushProvider::Webhook,
    ];

    pub fn is_apns(self) -> bool {
        matches!(self, PushProvider::Apns | PushProvider::ApnsVoip)
    }

    /// The name used on the wire, in the configuration and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            PushProvider::Apns => "apns",
            PushProvider::ApnsVoip => "apns_voip",
            PushProvider::Fcm => "fcm",
            PushProvider::Webhook => "webhook",
        }
    }
}

impl std::fmt::Display for PushProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which APNs servers a device token belongs to: tokens of a development
/// build only work with the sandbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApnsEnvironment {
    #[default]
    Production,
    Sandbox,
}

/// Where one device is rung while it is not connected.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushTarget {
    pub provider: PushProvider,
    /// The APNs device token (hex), the FCM registration token, or for a
    /// webhook whatever the app's backend knows the device by.
    pub token: Text,
    /// APNs only: the app's bundle id (the server adds `.voip` for
    /// APNS_VOIP). None: the topic configured on the server.
    // No `skip_serializing_if` in this struct: stores encode it with
    // postcard, which has no field names and must see every field.
    #[serde(default)]
    pub topic: Option<Text>,
    /// APNs only.
    #[serde(default)]
    pub environment: ApnsEnvironment,
    /// APNS_VOIP only: the device's regular APNs token (the one
    /// `registerForRemoteNotifications` gives, not PushKit's). Stop pushes
    /// go to it as alert pushes: a PushKit token takes VoIP pushes only, and
    /// a VoIP push must report a new call. Without it a stop push cannot
    /// reach the device; the app learns the end when it connects.
    #[serde(default)]
    pub alert_token: Option<Text>,
}

impl PushTarget {
    /// The longest token accepted (FCM's are about 160 bytes; a webhook's is
    /// the app's choice).
    /// cbindgen:ignore
    pub const MAX_TOKEN: usize = 4096;
    /// The longest APNs topic: a bundle id, to which the server adds
    /// `.voip` for APNS_VOIP (Apple takes 255 bytes).
    /// cbindgen:ignore
    pub const MAX_TOPIC: usize = 250;

    /// Every rule a target must meet, each failure naming its field.
    pub fn validate(&self) -> Result<()> {
        let token = &*self.token;
        if token.is_empty() {
            return Err(Error::invalid("push_target.token: empty"));
        }
        if token.len() > Self::MAX_TOKEN {
            return Err(Error::new(
                crate::error::ErrorCode::PayloadTooLarge,
                format!(
                    "push_target.token: {} bytes, the limit is {}",
                    token.len(),
                    Self::MAX_TOKEN
                ),
            ));
        }
        if let Some(bad) = token.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(Error::invalid(format!(
                "push_target.token: {bad:?} is not allowed (printable ASCII without spaces only)"
            )));
        }
        match self.provider {
            PushProvider::Apns | PushProvider::ApnsVoip => {
                // Device tokens are hex: 32 bytes today, which Apple says may
                // grow.
                check_apns_token("push_target.token", token)?;
                if let Some(alert) = &self.alert_token {
                    if self.provider != PushProvider::ApnsVoip {
                        return Err(Error::invalid(
                            "push_target.alert_token: only APNS_VOIP targets have one",
                        ));
                    }
                    check_apns_token("push_target.alert_token", alert)?;
                }
                if let Some(topic) = &self.topic {
                    let ok = !topic.is_empty()
                        && topic.len() <= Self::MAX_TOPIC
                        && topic
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
                    if !ok {
                        return Err(Error::invalid(format!(
                            "push_target.topic: '{topic}' is not a bundle id (1 to {} letters, digits, '.' and '-')",
                            Self::MAX_TOPIC
                        )));
                    }
                    if topic.ends_with(".voip") {
                        return Err(Error::invalid(format!(
                            "push_target.topic: '{topic}': give the bundle id without '.voip' (the server adds it for APNS_VOIP)"
                        )));
                    }
                }
            }
            PushProvider::Fcm | PushProvider::Webhook => {
                if self.topic.is_some() {
                    return Err(Error::invalid(format!(
                        "push_target.topic: only APNS and APNS_VOIP targets have one, not {}",
                        self.provider
                    )));
                }
                if self.alert_token.is_some() {
                    return Err(Error::invalid(format!(
                        "push_target.alert_token: only APNS_VOIP targets have one, not {}",
                        self.provider
                    )));
                }
                if self.environment != ApnsEnvironment::Production {
                    return Err(Error::invalid(format!(
                        "push_target.environment: only APNS and APNS_VOIP targets have one, not {}",
                        self.provider
                    )));
                }
            }
        }
        Ok(())
    }
}

/// APNs device tokens are hex: 32 bytes today, which Apple says may grow.
fn check_apns_token(field: &str, token: &str) -> Result<()> {
    let hex = token.chars().all(|c| c.is_ascii_hexdigit());
    if token.len() % 2 != 0 || token.len() < 16 || token.len() > 200 || !hex {
        return Err(Error::invalid(format!(
            "{field}: an APNs device token is 16 to 200 hex digits"
        )));
    }
    Ok(())
}

/// What happened to the push for one invitee's device, as its inviter learns
/// it (`invitation_push_result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushOutcome {
    /// The provider took it (APNs 200, FCM 200, the webhook 2xx).
    Sent,
    /// The provider refused it, or could not be reached in time; `reason`
    /// says why (the provider's reason where it gave one).
    Failed,
    /// The invitee is offline and none of its devices has a push target:
    /// nothing was pushed.
    NoPushTarget,
}

/// Shorthand for building test targets.
impl PushTarget {
    pub fn new(provider: PushProvider, token: impl Into<Text>) -> PushTarget {
        PushTarget {
            provider,
            token: token.into(),
            topic: None,
            environment: ApnsEnvironment::Production,
            alert_token: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn refused(target: PushTarget) -> String {
        let error = target.validate().unwrap_err();
        assert_ne!(error.code, ErrorCode::Ok);
        error.message
    }

    #[test]
    fn good_targets_pass() {
        let apns = PushTarget {
            topic: Some("com.example.app".into()),
            environment: ApnsEnvironment::Sandbox,
            alert_token: Some("cd".repeat(32).into()),
            ..PushTarget::new(PushProvider::ApnsVoip, "ab".repeat(32))
        };
        apns.validate().unwrap();
        PushTarget::new(PushProvider::Fcm, "fcm-token:APA91b_x-y")
            .validate()
            .unwrap();
        PushTarget::new(PushProvider::Webhook, "device-7")
            .validate()
            .unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        assert!(refused(PushTarget::new(PushProvider::Fcm, "")).starts_with("push_target.token"));
        assert!(refused(PushTarget::new(PushProvider::Fcm, "a b")).contains("' '"));
        let long = PushTarget::new(PushProvider::Webhook, "x".repeat(4097));
        assert_eq!(
            long.validate().unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
        assert!(refused(PushTarget::new(PushProvider::Apns, "xyz")).contains("hex"));
        let topic = PushTarget {
            topic: Some("not a bundle".into()),
            ..PushTarget::new(PushProvider::Apns, "ab".repeat(32))
        };
        assert!(refused(topic).starts_with("push_target.topic"));
        let fcm_topic = PushTarget {
            topic: Some("com.example".into()),
            ..PushTarget::new(PushProvider::Fcm, "t")
        };
        assert!(refused(fcm_topic).contains("only APNS"));
        let fcm_sandbox = PushTarget {
            environment: ApnsEnvironment::Sandbox,
            ..PushTarget::new(PushProvider::Fcm, "t")
        };
        assert!(refused(fcm_sandbox).starts_with("push_target.environment"));
        let alert = PushTarget {
            alert_token: Some("cd".repeat(32).into()),
            ..PushTarget::new(PushProvider::Apns, "ab".repeat(32))
        };
        assert!(refused(alert).starts_with("push_target.alert_token"));
        // The server adds ".voip" for APNS_VOIP: a topic may not have it, and
        // is at most 250 bytes (Apple takes 255 with it).
        for provider in [PushProvider::Apns, PushProvider::ApnsVoip] {
            let voip = PushTarget {
                topic: Some("com.example.app.voip".into()),
                ..PushTarget::new(provider, "ab".repeat(32))
            };
            assert!(refused(voip).contains("without '.voip'"));
            let long = PushTarget {
                topic: Some("a".repeat(251).into()),
                ..PushTarget::new(provider, "ab".repeat(32))
            };
            assert!(refused(long).starts_with("push_target.topic"));
            PushTarget {
                topic: Some("a".repeat(250).into()),
                ..PushTarget::new(provider, "ab".repeat(32))
            }
            .validate()
            .unwrap();
        }
        let bad_alert = PushTarget {
            alert_token: Some("zz".into()),
            ..PushTarget::new(PushProvider::ApnsVoip, "ab".repeat(32))
        };
        assert!(refused(bad_alert).starts_with("push_target.alert_token"));
    }

    #[test]
    fn targets_round_trip_through_json() {
        let target = PushTarget {
            topic: Some("com.example.app".into()),
            ..PushTarget::new(PushProvider::ApnsVoip, "ab".repeat(32))
        };
        let json = serde_json::to_string(&target).unwrap();
        assert!(json.contains("\"provider\":\"apns_voip\""), "{json}");
        assert_eq!(serde_json::from_str::<PushTarget>(&json).unwrap(), target);
        assert!(serde_json::from_str::<PushTarget>(r#"{"provider":"gcm","token":"t"}"#).is_err());
    }
}

//! Small constructors shared by the Rust integration tests.
#![allow(dead_code)] // each test file uses its own subset

use beckon::protocol::{Answer, DeviceId, InvitationId, InviteeState, InviteeStatus, UserId};

pub fn user(name: &str) -> UserId {
    UserId::parse(name, "user_id").unwrap()
}

pub fn users(names: &[&str]) -> Vec<UserId> {
    names.iter().map(|n| user(n)).collect()
}

pub fn dev(name: &str) -> DeviceId {
    DeviceId::parse(name, "device_id").unwrap()
}

pub fn answer(id: &InvitationId, data: &str) -> Answer {
    Answer {
        invitation_id: id.clone(),
        extended_data: data.into(),
    }
}

pub fn status(name: &str, state: InviteeState) -> InviteeStatus {
    InviteeStatus {
        user_id: user(name),
        state,
    }
}
